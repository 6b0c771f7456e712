CREATE TABLE order_lines (
    order_id bigint NOT NULL REFERENCES orders (id),
    sku text NOT NULL,
    quantity int NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, sku)
);
CREATE INDEX order_lines_sku ON order_lines (sku);
