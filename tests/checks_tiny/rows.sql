INSERT INTO items SELECT g, g % 500, 'sku-' || g, g % 97 FROM generate_series(1, 20000) AS g;
