-- Removes the reference schema: referencing tables first.  No CASCADE, on
-- purpose: if something else (a view, a later migration's table) still
-- depends on these tables, the drop fails instead of silently taking it along.

DROP TABLE audit_logs;
DROP TABLE whatsapp_messages;
DROP TABLE credit_ledgers;
DROP TABLE payments;
DROP TABLE orders;
DROP TABLE vendor_products;
DROP TABLE products;
DROP TABLE vendors;
DROP TABLE retailers;
DROP TABLE users;
