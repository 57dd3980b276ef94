#!/bin/sh
# Sign N certificates the way the how-to does (seed 004): one `openssl ca`
# process per certificate, one after the other (openssl ca is not safe to run
# concurrently on one index.txt).
#   openssl-ca-loop.sh OPENSSL_CNF CSR_DIR CSR_COUNT N OUT_DIR
set -eu
cnf=$1 csrdir=$2 count=$3 n=$4 out=$5
mkdir -p "$out"
i=0
while [ "$i" -lt "$n" ]; do
    openssl ca -batch -notext -config "$cnf" -in "$csrdir/$((i % count))" \
        -out "$out/$i.pem" 2>/dev/null || {
        echo "openssl ca failed for certificate $i" >&2
        openssl ca -batch -notext -config "$cnf" -in "$csrdir/$((i % count))" \
            -out "$out/$i.pem" >&2
        exit 1
    }
    i=$((i + 1))
done
