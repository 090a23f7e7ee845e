-- Seed setup: sizes, helper functions and word lists for the seed files.
--
-- Everything here is temporary (pg_temp functions, ON COMMIT DROP tables) so
-- seeding leaves nothing behind but the data.  The caller sets
-- dbtune.seed_scale (transaction-local) before running this file.
--
-- Determinism: every value is derived from a row number through
-- hashint8extended() (stable across PostgreSQL versions, as hash partitioning
-- depends on it) and IEEE float arithmetic that is exactly rounded (+ - * /
-- sqrt, never exp/ln/power whose results may differ between libm builds).
-- No random(), no now(): the data ends at a fixed reference date.

-- to_char() and ::date below depend on the session time zone.
SET LOCAL TimeZone = 'UTC';
-- The generated queries look huge to the planner; compiling them with JIT
-- costs about a second each, more than running them at small scales.
SET LOCAL jit = off;

-- Row counts for this scale; scale 1 is about one million orders.
CREATE TEMP TABLE seed_size ON COMMIT DROP AS
SELECT p.scale,
       greatest(1, round(200 * p.scale))::bigint      AS staff,
       greatest(1, round(20000 * p.scale))::bigint    AS retailers,
       greatest(1, round(2000 * p.scale))::bigint     AS vendors,
       greatest(1, round(50000 * p.scale))::bigint    AS products,
       greatest(1, round(1000000 * p.scale))::bigint  AS orders,
       greatest(1, round(200000 * p.scale))::bigint   AS whatsapp_messages,
       greatest(1, round(1000000 * p.scale))::bigint  AS audit_logs
FROM (SELECT current_setting('dbtune.seed_scale')::numeric AS scale) AS p;

-- Uniform in [0, 1) from (row number, salt); a different salt gives an
-- independent stream.  53 bits so the float conversion is exact.
CREATE FUNCTION pg_temp.seed_u(n bigint, salt bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (hashint8extended(n, salt) & 9007199254740991)::double precision
           / 9007199254740992::double precision;

-- Uniform integer in [0, k).
CREATE FUNCTION pg_temp.seed_pick(n bigint, salt bigint, k bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN floor(pg_temp.seed_u(n, salt) * k)::bigint;

-- Skewed integer in [0, k): low values are common (P(0) = 1/sqrt(k)).  Used
-- for activity (a few retailers place many orders), popularity and rarity.
CREATE FUNCTION pg_temp.seed_skew(n bigint, salt bigint, k bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN floor(pg_temp.seed_u(n, salt) * pg_temp.seed_u(n, salt) * k)::bigint;

-- The fixed end of the seeded history; the data covers the 730 days before it.
CREATE FUNCTION pg_temp.seed_ref() RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN timestamptz '2025-07-01 00:00:00+00';

-- Day (0 .. 729) of row n of total: volume grows linearly over the two years,
-- and ids follow time, as they do in a live system.
CREATE FUNCTION pg_temp.seed_day(n bigint, total bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN least(729, floor(730 * sqrt((n - 0.5::double precision) / total)))::integer;

-- Timestamp of row n of total: its day, during business hours
-- (02:30-15:30 UTC, i.e. 08:00-21:00 in India), in whole seconds.
-- STABLE, not IMMUTABLE: timestamptz arithmetic is, and an IMMUTABLE function
-- with a STABLE body is never inlined (and then costs a function call per row).
CREATE FUNCTION pg_temp.seed_ts(n bigint, total bigint, salt bigint) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN pg_temp.seed_ref() - interval '730 days'
           + make_interval(secs => pg_temp.seed_day(n, total) * 86400
                                   + 9000 + pg_temp.seed_pick(n, salt, 46800));

-- The mobile number of user n (WhatsApp messages come from these numbers).
CREATE FUNCTION pg_temp.seed_phone(n bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN '+91' || (6000000000 + pg_temp.seed_pick(n, 31, 4000000000))::text;

-- Order n's credit terms.  Shared by the orders and payments files so that an
-- order's payment_status and its payment row agree.
CREATE FUNCTION pg_temp.seed_order_on_credit(n bigint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN pg_temp.seed_u(n, 206) < 0.45;

CREATE FUNCTION pg_temp.seed_order_terms_days(n bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (15 * (1 + pg_temp.seed_pick(n, 207, 3)))::integer;

-- Seconds from order to full payment: most pay a little before the due date,
-- some up to three days late.
CREATE FUNCTION pg_temp.seed_order_pay_delay_s(n bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (pg_temp.seed_order_terms_days(n) - 12) * 86400 + pg_temp.seed_pick(n, 208, 15 * 86400);

-- The few retailers' orders that are never paid in full: the overdue payments.
CREATE FUNCTION pg_temp.seed_order_defaults(n bigint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN pg_temp.seed_u(n, 210) < 0.015;

-- Word lists.  Order matters: with seed_skew the first entries are the most
-- common.  The rare_ lists are drawn from seldom, on purpose: they give
-- trigram searches fragments that match one row in hundreds.
CREATE TEMP TABLE seed_words ON COMMIT DROP AS
SELECT
    ARRAY['Rahul', 'Amit', 'Priya', 'Suresh', 'Ramesh', 'Sunita', 'Rajesh', 'Anita', 'Vijay',
          'Pooja', 'Sanjay', 'Neha', 'Mahesh', 'Lakshmi', 'Deepak', 'Kavya', 'Manoj', 'Sneha',
          'Arjun', 'Meena', 'Anil', 'Geeta', 'Sunil', 'Rekha', 'Aditya', 'Ananya', 'Rohan',
          'Diya', 'Karthik', 'Aditi', 'Venkatesh', 'Farhan', 'Ayesha', 'Imran', 'Zoya',
          'Harpreet', 'Gurpreet', 'Simran', 'Joseph', 'Mary', 'Thomas', 'Arun', 'Srinivas',
          'Murugan', 'Senthil', 'Bhavesh', 'Jignesh', 'Hitesh', 'Parth', 'Tanvi', 'Ishita',
          'Nikhil', 'Varun', 'Vivaan', 'Reyansh', 'Ishaan', 'Tejaswini', 'Hrithik', 'Yashodhara',
          'Oviya'] AS first_names,
    ARRAY['Sharma', 'Patel', 'Singh', 'Kumar', 'Reddy', 'Gupta', 'Agarwal', 'Shah', 'Iyer',
          'Nair', 'Rao', 'Jain', 'Mehta', 'Verma', 'Khan', 'Das', 'Joshi', 'Yadav', 'Mishra',
          'Pandey', 'Kulkarni', 'Deshpande', 'Pillai', 'Menon', 'Naidu', 'Chatterjee',
          'Banerjee', 'Chauhan', 'Thakur', 'Bose', 'Ghosh', 'Mukherjee', 'Saxena', 'Malhotra',
          'Kapoor', 'Bhatia', 'Sethi', 'Arora', 'Gill', 'Sandhu', 'Dhillon', 'Fernandes',
          'Pereira', 'Rodrigues', 'Qureshi', 'Siddiqui', 'Ansari', 'Shaikh', 'Hegde', 'Shetty',
          'Kamath', 'Bhat', 'Acharya', 'Vaidya', 'Gokhale', 'Apte'] AS last_names,
    -- 0.8% of users, each about 1 in 500: selective fragments for name search
    ARRAY['Zutshi', 'Thekkekara', 'Vadakkedath', 'Ozhukayil'] AS rare_last_names,
    ARRAY['Mumbai', 'Delhi', 'Bengaluru', 'Hyderabad', 'Chennai', 'Pune', 'Kolkata',
          'Ahmedabad', 'Jaipur', 'Lucknow', 'Surat', 'Indore', 'Nagpur', 'Kochi', 'Coimbatore',
          'Bhopal', 'Patna', 'Vadodara', 'Nashik', 'Visakhapatnam', 'Guwahati', 'Mysuru',
          'Madurai', 'Ludhiana'] AS cities,
    ARRAY['Kaveri', 'Sunrise', 'Ganga', 'Sahyadri', 'Narmada', 'Malabar', 'Deccan', 'Swarna',
          'Kesari', 'Amrit', 'Lotus', 'Peacock', 'Tiger', 'Banyan', 'Neelgiri', 'Godavari',
          'Vindhya', 'Konkan', 'Aravali', 'Satpura', 'Coromandel', 'Saptagiri', 'Tapti',
          'Chilika', 'Sundarban', 'Majuli', 'Hampi', 'Konark', 'Kaziranga', 'Lonar'] AS brands,
    -- small regional brands, 0.5% of products together: selective search fragments
    ARRAY['Zanskar', 'Khajuraho', 'Dholavira', 'Lothal', 'Bhimbetka'] AS rare_brands,
    ARRAY['Premium', 'Classic', 'Gold', 'Select', 'Everyday', 'Value', 'Royal', 'Special',
          'Supreme', 'Original', 'Deluxe', 'Regular'] AS adjectives,
    ARRAY['General Store', 'Kirana Stores', 'Provision Store', 'Traders', 'Super Mart',
          'Supermarket', 'Departmental Store', 'Mini Mart', 'Fresh Mart'] AS store_kinds,
    ARRAY['Distributors', 'Agencies', 'Wholesale', 'Enterprises', 'Trading Co.',
          'Marketing', 'Suppliers'] AS vendor_kinds;

-- The product catalogue's taxonomy.  weight is the share of products; a
-- product's name is built from its subcategory's qualifiers, nouns and units.
CREATE TEMP TABLE seed_taxonomy ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY t.ord) AS id,
       t.category, t.subcategory, t.weight,
       sum(t.weight) OVER (ORDER BY t.ord) - t.weight AS lo,
       sum(t.weight) OVER (ORDER BY t.ord) AS hi,
       sum(t.weight) OVER () AS total,
       t.qualifiers, t.nouns, t.units
FROM (VALUES
    (1, 'Groceries & Staples', 'Rice', 6,
        ARRAY['Basmati', 'Sona Masoori', 'Kolam', 'Ponni', 'Brown', 'Jeera Samba'],
        ARRAY['Rice'], ARRAY['1 kg', '5 kg', '10 kg', '25 kg']),
    (2, 'Groceries & Staples', 'Pulses', 5,
        ARRAY['Unpolished', 'Organic', 'Premium', 'Double Polished'],
        ARRAY['Toor Dal', 'Moong Dal', 'Chana Dal', 'Masoor Dal', 'Urad Dal', 'Rajma', 'Kabuli Chana'],
        ARRAY['500 g', '1 kg', '5 kg', '30 kg']),
    (3, 'Groceries & Staples', 'Flour', 4,
        ARRAY['Chakki Fresh', 'Multigrain', 'Whole Wheat', 'Fine'],
        ARRAY['Atta', 'Maida', 'Besan', 'Sooji', 'Ragi Flour'], ARRAY['1 kg', '5 kg', '10 kg']),
    (4, 'Groceries & Staples', 'Edible Oils', 5,
        ARRAY['Refined', 'Cold Pressed', 'Kachi Ghani', 'Filtered'],
        ARRAY['Sunflower Oil', 'Mustard Oil', 'Groundnut Oil', 'Rice Bran Oil', 'Coconut Oil'],
        ARRAY['1 L', '5 L', '15 L']),
    (5, 'Groceries & Staples', 'Spices', 5,
        ARRAY['Pure', 'Stone Ground', 'Kashmiri', 'Roasted'],
        ARRAY['Turmeric Powder', 'Chilli Powder', 'Garam Masala', 'Coriander Powder', 'Cumin Seeds', 'Black Pepper'],
        ARRAY['100 g', '200 g', '500 g']),
    (6, 'Groceries & Staples', 'Sugar & Salt', 3,
        ARRAY['Refined', 'Double Refined', 'Iodised', 'Rock'],
        ARRAY['Sugar', 'Salt', 'Jaggery'], ARRAY['1 kg', '5 kg', '50 kg']),
    (7, 'Beverages', 'Tea & Coffee', 4,
        ARRAY['Assam', 'Darjeeling', 'Masala', 'Chicory Blend', 'Arabica'],
        ARRAY['Tea', 'Green Tea', 'Filter Coffee', 'Instant Coffee'], ARRAY['250 g', '500 g', '1 kg']),
    (8, 'Beverages', 'Soft Drinks', 3,
        ARRAY['Sparkling', 'Diet', 'Classic', 'Zero Sugar'],
        ARRAY['Cola', 'Lemon Soda', 'Orange Drink', 'Jeera Soda', 'Tonic Water'],
        ARRAY['250 ml x 24', '600 ml x 12', '2 L x 6']),
    (9, 'Beverages', 'Juices', 2,
        ARRAY['No Added Sugar', 'Pulpy', 'Chilled'],
        ARRAY['Mango Juice', 'Mixed Fruit Juice', 'Orange Juice', 'Guava Nectar', 'Litchi Drink'],
        ARRAY['200 ml x 30', '1 L x 12']),
    (10, 'Snacks & Packaged Food', 'Biscuits', 4,
        ARRAY['Chocolate', 'Butter', 'Elaichi', 'Oat', 'Cashew'],
        ARRAY['Cream Biscuits', 'Digestive Biscuits', 'Marie Biscuits', 'Cookies', 'Rusk'],
        ARRAY['carton of 48', 'carton of 96']),
    (11, 'Snacks & Packaged Food', 'Namkeen', 4,
        ARRAY['Masala', 'Salted', 'Tangy Tomato', 'Peri Peri', 'Classic'],
        ARRAY['Bhujia', 'Mixture', 'Chips', 'Peanuts', 'Khakhra'], ARRAY['200 g x 20', '1 kg']),
    (12, 'Snacks & Packaged Food', 'Instant Food', 3,
        ARRAY['Masala', 'Veg', 'Tomato', 'Hakka', 'Schezwan'],
        ARRAY['Noodles', 'Pasta', 'Poha Mix', 'Upma Mix', 'Soup'], ARRAY['pack of 12', 'pack of 48']),
    (13, 'Personal Care', 'Soaps & Body Wash', 4,
        ARRAY['Sandal', 'Neem', 'Aloe Vera', 'Glycerin', 'Lemon'],
        ARRAY['Bath Soap', 'Body Wash', 'Hand Wash'], ARRAY['75 g x 4', '125 g x 48', '250 ml']),
    (14, 'Personal Care', 'Hair Care', 3,
        ARRAY['Herbal', 'Anti Dandruff', 'Coconut', 'Almond', 'Amla'],
        ARRAY['Shampoo', 'Hair Oil', 'Conditioner'], ARRAY['180 ml', '340 ml', '1 L']),
    (15, 'Personal Care', 'Oral Care', 2,
        ARRAY['Herbal', 'Clove', 'Mint', 'Charcoal', 'Sensitive'],
        ARRAY['Toothpaste', 'Toothbrush', 'Mouthwash'], ARRAY['100 g', '150 g x 36', 'pack of 12']),
    (16, 'Home Care', 'Detergents', 4,
        ARRAY['Lemon', 'Matic', 'Ultra', 'Lavender'],
        ARRAY['Detergent Powder', 'Detergent Liquid', 'Dishwash Bar', 'Dishwash Gel'],
        ARRAY['1 kg', '4 kg', '500 ml']),
    (17, 'Home Care', 'Cleaners', 3,
        ARRAY['Pine', 'Citrus', 'Lavender', 'Jasmine'],
        ARRAY['Floor Cleaner', 'Toilet Cleaner', 'Glass Cleaner', 'Disinfectant'],
        ARRAY['500 ml', '1 L', '5 L']),
    (18, 'Home Care', 'Pest Control', 1,
        ARRAY['Herbal', 'Odourless', 'Fast Acting'],
        ARRAY['Mosquito Coil', 'Liquid Vaporizer', 'Cockroach Spray'],
        ARRAY['pack of 10', '45 ml', '400 ml']),
    (19, 'Kitchenware', 'Cookware', 3,
        ARRAY['Stainless Steel', 'Aluminium', 'Cast Iron', 'Hard Anodised', 'Non Stick', 'Triply'],
        ARRAY['Pressure Cooker', 'Kadai', 'Tawa', 'Frying Pan', 'Saucepan'],
        ARRAY['2 L', '3 L', '5 L', '26 cm']),
    (20, 'Kitchenware', 'Storage', 2,
        ARRAY['Stainless Steel', 'Glass', 'BPA Free Plastic', 'Copper'],
        ARRAY['Container Set', 'Lunch Box', 'Water Bottle', 'Spice Box'],
        ARRAY['set of 3', '750 ml', '1 L']),
    (21, 'Kitchenware', 'Tableware', 2,
        ARRAY['Melamine', 'Bone China', 'Stainless Steel', 'Brass', 'Opalware'],
        ARRAY['Dinner Set', 'Glass Set', 'Serving Bowl', 'Thali'], ARRAY['set of 6', '24 pieces']),
    (22, 'Dairy & Bakery', 'Dairy', 3,
        ARRAY['Cow', 'Desi', 'Salted', 'Full Cream'],
        ARRAY['Ghee', 'Butter', 'Paneer', 'Milk Powder', 'Cheese Slices'],
        ARRAY['200 g', '500 g', '1 L']),
    (23, 'Dairy & Bakery', 'Bakery', 2,
        ARRAY['Whole Wheat', 'Multigrain', 'Milk', 'Fruit'],
        ARRAY['Bread', 'Pav', 'Cake', 'Buns'], ARRAY['400 g', 'pack of 6']),
    (24, 'Stationery', 'Writing', 2,
        ARRAY['Blue', 'Black', 'Fine Tip', 'Permanent'],
        ARRAY['Ball Pen', 'Gel Pen', 'Pencil', 'Marker'], ARRAY['box of 10', 'box of 50']),
    (25, 'Stationery', 'Paper', 2,
        ARRAY['Ruled', 'Unruled', 'Spiral', '75 GSM'],
        ARRAY['Notebook', 'A4 Paper', 'Register'], ARRAY['pack of 6', 'ream of 500']),
    (26, 'Electricals', 'Lighting', 2,
        ARRAY['9 W', '12 W', '20 W', 'Cool Day Light', 'Warm White'],
        ARRAY['LED Bulb', 'Tube Light', 'Emergency Lamp'], ARRAY['pack of 4', 'pack of 10']),
    (27, 'Electricals', 'Wiring', 1,
        ARRAY['4 Socket', 'Modular', '1.5 sq mm', 'FR PVC'],
        ARRAY['Extension Board', 'Switch', 'Copper Wire'], ARRAY['1 piece', '90 m coil']),
    (28, 'Electricals', 'Batteries', 1,
        ARRAY['AA', 'AAA', '9 V', 'Rechargeable', 'Alkaline'],
        ARRAY['Battery', 'Battery Pack'], ARRAY['pack of 4', 'pack of 10']),
    (29, 'Baby Care', 'Diapers & Wipes', 2,
        ARRAY['Small', 'Medium', 'Large', 'Aloe', 'Unscented'],
        ARRAY['Diaper Pants', 'Baby Wipes'], ARRAY['pack of 40', 'pack of 72']),
    (30, 'Baby Care', 'Baby Food', 1,
        ARRAY['Wheat Apple', 'Rice', 'Stage 1', 'Stage 2'],
        ARRAY['Cereal', 'Infant Formula'], ARRAY['300 g', '400 g']),
    (31, 'Hardware', 'Tools', 1,
        ARRAY['Insulated', 'Drop Forged', 'Magnetic', 'Chrome Vanadium'],
        ARRAY['Screwdriver Set', 'Hammer', 'Plier', 'Measuring Tape'], ARRAY['1 piece', 'set of 6']),
    (32, 'Hardware', 'Fasteners', 1,
        ARRAY['Brass', 'Galvanised', 'Stainless Steel', 'Zinc Plated'],
        ARRAY['Wood Screws', 'Nails', 'Wall Plugs', 'Hinges'], ARRAY['box of 100', '1 kg']),
    (33, 'Hardware', 'Paints', 1,
        ARRAY['Glossy', 'Matt', 'Satin', 'Weatherproof'],
        ARRAY['Wall Putty', 'Enamel Paint', 'Primer', 'Distemper'], ARRAY['1 L', '4 L', '20 kg'])
) AS t(ord, category, subcategory, weight, qualifiers, nouns, units);

-- Temporary tables are never auto-analyzed: without statistics the planner
-- takes these one-row tables for hundreds of rows.
ANALYZE seed_size, seed_words, seed_taxonomy;
