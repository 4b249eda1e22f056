#!/bin/bash
# usage: drive.sh NAME "ARGS" order...   (order: B A B A)
# runs benchmark script NAME with ARGS for before (base) / after (main snapshot), alternating
AFTER=/tmp/after_1263887
OUT=/work/main/benchmarks/results/issue20
PY=/work/main/.venv/bin/python
name=$1; tag=$2; args=$3; shift 3
i=0
for side in "$@"; do
  i=$((i+1))
  if [ "$side" = B ]; then root=/work/base; else root=$AFTER; fi
  f=$OUT/${tag}_${i}_${side}.txt
  {
    echo "# side=$side root=$root date=$(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# cmd: cd $root && OMP_NUM_THREADS=1 PYTHONPATH=$root/src python benchmarks/$name $args"
  } > $f
  s=$(date +%s)
  ( cd $root && OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$root/src /usr/bin/time -f "# time: wall %e s user %U s sys %S s" $PY benchmarks/$name $args ) >> $f 2>&1
  echo "# end date=$(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg) elapsed=$(( $(date +%s)-s ))s" >> $f
  echo "$f done in $(( $(date +%s)-s ))s"
done
