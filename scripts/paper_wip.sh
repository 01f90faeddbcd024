#!/bin/bash
# The paper runs take several sessions on 2 CPU cores, and a fresh checkout holds only what git holds. This keeps
# their finished cell records (no preview tensors) in git between sessions so no finished cell is lost:
#   bash scripts/paper_wip.sh pack     # runs/ -> results/embedded/paper-wip/paper_runs.tgz (commit it)
#   bash scripts/paper_wip.sh unpack   # the reverse; cells already in runs/ win, so it never undoes progress
# Once the reports are committed, delete results/embedded/paper-wip/.
set -euo pipefail
cd "$(dirname "$0")/.."
WIP=results/embedded/paper-wip
TGZ=$WIP/paper_runs.tgz
case "${1:-}" in
  pack)
    dirs=$(ls -d runs/embedded-paper-*-v21 runs/fairness-embedded-paper-v21 2>/dev/null || true)
    [ -n "$dirs" ] || { echo "paper_wip: no paper run folders under runs/; nothing to pack"; exit 0; }
    mkdir -p "$WIP"
    # shellcheck disable=SC2086
    tar --exclude='*/previews' --exclude='*/logs' --exclude='*/slurm' -czf "$TGZ.tmp" $dirs && mv "$TGZ.tmp" "$TGZ"
    echo "paper_wip: packed $(tar -tzf "$TGZ" | grep -c '/cells/.*\.json$') cell records into $TGZ ($(du -h "$TGZ" | cut -f1))"
    ;;
  unpack)
    [ -f "$TGZ" ] || { echo "paper_wip: no $TGZ; starting from what runs/ holds"; exit 0; }
    tar -xzf "$TGZ" --skip-old-files
    echo "paper_wip: unpacked $TGZ (existing files kept)"
    ;;
  *) echo "usage: bash scripts/paper_wip.sh pack|unpack" >&2; exit 2 ;;
esac
