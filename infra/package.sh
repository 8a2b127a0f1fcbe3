#!/usr/bin/env bash
# Build Klaxon's deployable artefacts offline, without AWS credentials:
#   <out>/sam/sam.json + deployment.zip        chalice package, merged with infra/resources.json
#   <out>/terraform/chalice.tf.json + zip      chalice package --pkg-format terraform (+ infra/terraform overrides)
# The Lambda zip gets precompiled bytecode (unchecked-hash .pyc: Lambda cannot write its own).
#
# Usage: infra/package.sh [out-dir]     (default: build/)
# Env:   KLAXON_STAGE (prod), KLAXON_PACKAGE_CACHE (build/.cache: vendored wheels, keyed by the locks),
#        KLAXON_SKIP_TERRAFORM=1 to build only the SAM template.
#
# What it does to the project: nothing. It copies app.py, chalicelib/, .chalice/ into <out>/stage,
# copies config/ and playbooks/ (read at run time, outside chalicelib/) into
# <out>/stage/chalicelib/_data/, and the stage's environment points KLAXON_BRANDS_FILE,
# KLAXON_ROSTER_FILE and KLAXON_PLAYBOOKS_DIR at /var/task/chalicelib/_data/... .
# Runtime dependencies are installed as manylinux wheels into <out>/stage/vendor (chalice itself
# excluded: chalice adds its runtime); chalice 1.34's own resolver cannot take numpy 2.x wheels
# (manylinux_2_28 only), so chalice gets an empty requirements.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/build}" && cd "${1:-$ROOT/build}" && pwd)"
STAGE="${KLAXON_STAGE:-prod}"
PY="${PY:-$ROOT/.venv/bin/python}"
CHALICE="${CHALICE:-$ROOT/.venv/bin/chalice}"
CACHE="${KLAXON_PACKAGE_CACHE:-$ROOT/build/.cache}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
start=$(date +%s)

# 1. staging copy of the project --------------------------------------------------------------
work="$OUT/stage"
rm -rf "$work" "$OUT/sam" "$OUT/terraform"
mkdir -p "$work/.chalice" "$work/chalicelib/_data"
cp "$ROOT/app.py" "$work/"
(cd "$ROOT" && tar --exclude='__pycache__' --exclude='*.pyc' -cf - chalicelib) | (cd "$work" && tar -xf -)
cp "$ROOT/.chalice/config.json" "$ROOT"/.chalice/policy-*.json "$work/.chalice/"
(cd "$ROOT" && tar --exclude='__pycache__' -cf - config playbooks) | (cd "$work/chalicelib/_data" && tar -xf -)

# 2. runtime dependencies as Lambda (manylinux x86_64, CPython 3.11) wheels, cached by lock hash ----
key="$(cat "$ROOT/requirements.txt" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
vendor="$CACHE/vendor-py311-x86_64-$key"
if [ ! -d "$vendor" ]; then
    echo "installing runtime wheels for Lambda into $vendor ..."
    mkdir -p "$CACHE"
    grep -v -i -E '^\s*(chalice)\s*(==|$)' "$ROOT/requirements.txt" > "$CACHE/requirements-lambda.txt"
    # pip refuses a constraint on a package it is told to leave out; drop chalice's pin too.
    grep -v -i -E '^chalice==' "$ROOT/constraints.txt" > "$CACHE/constraints-lambda.txt"
    rm -rf "$vendor.tmp"
    "$PY" -m pip install -q --no-compile --target "$vendor.tmp" 2> >(grep -v "is ignored: it is neither" >&2) \
        --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
        --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
        -r "$CACHE/requirements-lambda.txt" -c "$CACHE/constraints-lambda.txt" \
        || { echo "package.sh: cannot install the Lambda wheels (no package registry?)" >&2; exit 3; }
    rm -rf "$vendor.tmp/bin"
    mv "$vendor.tmp" "$vendor"
fi
cp -al "$vendor" "$work/vendor" 2>/dev/null || cp -r "$vendor" "$work/vendor"
: > "$work/requirements.txt"
"$PY" "$ROOT/infra/prune.py" "$work/vendor"

# 3. chalice package ----------------------------------------------------------------------------
t0=$(date +%s)
# app.py names its SQS event sources from settings() when chalice imports it: give that import the
# stage's queue and table names, or every stage's event source would name the local default queue.
eval "$("$PY" - "$ROOT/.chalice/config.json" "$STAGE" <<'PY'
import json, shlex, sys
env = json.load(open(sys.argv[1]))["stages"][sys.argv[2]]["environment_variables"]
for name in ("KLAXON_QUEUE_NAME", "KLAXON_TABLE_PREFIX", "KLAXON_OUTBOUND_QUEUE_NAME"):
    if name in env:
        print(f"export {name}={shlex.quote(env[name])}")
PY
)"
(cd "$work" && "$CHALICE" package --stage "$STAGE" --merge-template "$ROOT/infra/resources.json" "$OUT/sam")
# The merge is a deep merge, so it cannot replace chalice's string queue ARN with a reference to the
# queue this template creates (needed so CloudFormation creates the queue before the event source).
"$PY" - "$OUT/sam/sam.json" <<'PY'
import json, sys
path = sys.argv[1]
template = json.load(open(path))
for function, queue in (("Ingest", "MentionsQueue"), ("Outbound", "OutboundQueue")):
    event = template["Resources"][function]["Properties"]["Events"][f"{function}SqsEventSource"]["Properties"]
    event["Queue"] = {"Fn::GetAtt": [queue, "Arn"]}
json.dump(template, open(path, "w"), indent=2)
PY
echo "chalice package (sam): $(( $(date +%s) - t0 )) s"
if [ "${KLAXON_SKIP_TERRAFORM:-0}" != "1" ]; then
    (cd "$work" && "$CHALICE" package --stage "$STAGE" --pkg-format terraform "$OUT/terraform")
    cp "$ROOT"/infra/terraform/*.tf.json "$OUT/terraform/"
fi

t0=$(date +%s)
# 4. precompile bytecode inside the package ------------------------------------------------
"$PY" "$ROOT/infra/precompile.py" "$OUT/sam/deployment.zip" "$OUT/unzipped"
echo "precompile: $(( $(date +%s) - t0 )) s"
if [ -f "$OUT/terraform/deployment.zip" ]; then
    cp "$OUT/sam/deployment.zip" "$OUT/terraform/deployment.zip"
fi
echo "packaged stage $STAGE in $(( $(date +%s) - start )) s: $OUT/sam/sam.json${KLAXON_SKIP_TERRAFORM:+}"
