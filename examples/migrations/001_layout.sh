# The data layout. Idempotent: `mkdir -p` changes nothing the second time.
mkdir -p "$DATA_DIR/orders" "$DATA_DIR/invoices"
