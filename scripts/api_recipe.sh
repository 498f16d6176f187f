#!/usr/bin/env bash
# Enhance one map through the REST API, start to finish: token, upload (with the scan step and
# probe), wait for parsing, start a job, poll it, download the result in the job's own format.
#
#   XRFWEB_PASSWORD=... scripts/api_recipe.sh MAP_FILE STEP_NM PROBE_FWHM_NM
#
# Optional: XRFWEB_URL (http://127.0.0.1:8000), XRFWEB_USER (demo), XRFWEB_PROJECT (the user's
# first project), XRFWEB_MODEL (else the first approved model that fits the map). Needs curl, jq.
# Prints the saved file's name; any error stops it with the server's reason (curl --fail).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 MAP_FILE STEP_NM PROBE_FWHM_NM" >&2; exit 2; }
MAP=$1 STEP_NM=$2 PROBE_NM=$3
URL=${XRFWEB_URL:-http://127.0.0.1:8000}
: "${XRFWEB_PASSWORD:?set XRFWEB_PASSWORD (make run prints the demo password once)}"

api() {  # api METHOD PATH [curl options...]: the JSON answer, or the error on stderr and exit 1
  local method=$1 path=$2; shift 2
  local out; out=$(mktemp)
  local code; code=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" -H "Authorization: Token $TOKEN" "$@" "$URL/api/v1/$path")
  if [ "${code:0:1}" != 2 ]; then echo "$method $path: HTTP $code $(cat "$out")" >&2; rm -f "$out"; exit 1; fi
  cat "$out"; rm -f "$out"
}

TOKEN=$(curl -sS --fail -d "username=${XRFWEB_USER:-demo}" --data-urlencode "password=$XRFWEB_PASSWORD" \
  "$URL/api/v1/auth/token/" | jq -r .token)
PROJECT=${XRFWEB_PROJECT:-$(api GET projects/ | jq -r '.[0].id')}

DATASET=$(api POST "projects/$PROJECT/datasets/" -F "file=@$MAP" -F "pixel_nm=$STEP_NM" \
  -F "probe_fwhm_nm=$PROBE_NM" | jq -r .id)
echo "uploaded $MAP as dataset $DATASET; reading it..." >&2
while :; do
  STATUS=$(api GET "datasets/$DATASET/" | jq -r .status)
  case $STATUS in
    ready) break ;;
    rejected) echo "rejected: $(api GET "datasets/$DATASET/" | jq -r .error)" >&2; exit 1 ;;
    *) sleep 1 ;;
  esac
done

# The job: with XRFWEB_MODEL, that model; else each approved model in turn until one fits this
# map (the server's fit rule refuses the others with a 400 and the reason, printed here).
JOB=
for MODEL in ${XRFWEB_MODEL:-$(api GET models/ | jq -r '.[] | select(.status == "approved") | .id')}; do
  OUT=$(mktemp)
  CODE=$(curl -sS -o "$OUT" -w '%{http_code}' -H "Authorization: Token $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"dataset\": $DATASET, \"model\": $MODEL}" "$URL/api/v1/jobs/")
  if [ "$CODE" = 201 ]; then JOB=$(jq -r .id "$OUT"); rm -f "$OUT"; break; fi
  echo "model $MODEL: HTTP $CODE $(jq -r '.error // .' "$OUT")" >&2
  rm -f "$OUT"
done
[ -n "$JOB" ] || { echo "no model could start on dataset $DATASET (reasons above)" >&2; exit 1; }
echo "job $JOB started with model $MODEL" >&2
while :; do
  STATE=$(api GET "jobs/$JOB/")
  STATUS=$(jq -r .status <<<"$STATE")
  case $STATUS in
    succeeded) break ;;
    failed | cancelled) echo "job $JOB $STATUS: $(jq -r .error <<<"$STATE")" >&2; exit 1 ;;
    *) echo "job $JOB $STATUS $(jq -r .progress <<<"$STATE")" >&2; sleep 2 ;;
  esac
done

# No ?format=: the job's own (HDF5 for an HDF5 input, else the TIFF set), under the server's name.
curl -sS --fail -OJ -H "Authorization: Token $TOKEN" -w '%{filename_effective}\n' "$URL/api/v1/jobs/$JOB/result/"
