# Default settings, written once: an operator's later edits are kept on a rerun.
if [ ! -e "$DATA_DIR/settings.conf" ]; then
    printf 'currency = "EUR"\nretention_days = 90\n' >"$DATA_DIR/settings.conf.tmp"
    mv "$DATA_DIR/settings.conf.tmp" "$DATA_DIR/settings.conf"
fi
