-- After the explicit ids: move each identity sequence past them, so the
-- application's next INSERT does not collide.  setval(.., NULL) on an empty
-- table is a no-op.
SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users));
SELECT setval(pg_get_serial_sequence('retailers', 'id'), (SELECT max(id) FROM retailers));
SELECT setval(pg_get_serial_sequence('vendors', 'id'), (SELECT max(id) FROM vendors));
SELECT setval(pg_get_serial_sequence('products', 'id'), (SELECT max(id) FROM products));
SELECT setval(pg_get_serial_sequence('vendor_products', 'id'), (SELECT max(id) FROM vendor_products));
SELECT setval(pg_get_serial_sequence('orders', 'id'), (SELECT max(id) FROM orders));
SELECT setval(pg_get_serial_sequence('payments', 'id'), (SELECT max(id) FROM payments));
SELECT setval(pg_get_serial_sequence('credit_ledgers', 'id'), (SELECT max(id) FROM credit_ledgers));
SELECT setval(pg_get_serial_sequence('whatsapp_messages', 'id'), (SELECT max(id) FROM whatsapp_messages));
SELECT setval(pg_get_serial_sequence('audit_logs', 'id'), (SELECT max(id) FROM audit_logs));

-- The helpers live in pg_temp, i.e. for the rest of the caller's session: drop them.
DROP FUNCTION pg_temp.seed_order_defaults(bigint);
DROP FUNCTION pg_temp.seed_order_pay_delay_s(bigint);
DROP FUNCTION pg_temp.seed_order_terms_days(bigint);
DROP FUNCTION pg_temp.seed_order_on_credit(bigint);
DROP FUNCTION pg_temp.seed_phone(bigint);
DROP FUNCTION pg_temp.seed_ts(bigint, bigint, bigint);
DROP FUNCTION pg_temp.seed_day(bigint, bigint);
DROP FUNCTION pg_temp.seed_ref();
DROP FUNCTION pg_temp.seed_skew(bigint, bigint, bigint);
DROP FUNCTION pg_temp.seed_pick(bigint, bigint, bigint);
DROP FUNCTION pg_temp.seed_u(bigint, bigint);

-- Fresh statistics, so plans on the seeded data are the plans it deserves.
ANALYZE users, retailers, vendors, products, vendor_products, orders, payments,
        credit_ledgers, whatsapp_messages, audit_logs;
