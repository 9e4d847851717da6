-- The dimensional model (contract, section 3), a staging copy of each table, and the run records.
CREATE SCHEMA IF NOT EXISTS analytics;

CREATE TABLE IF NOT EXISTS analytics.dim_locations (
    location_key BIGINT NOT NULL,
    location_name VARCHAR(255) NOT NULL,
    PRIMARY KEY (location_key)
);

CREATE TABLE IF NOT EXISTS analytics.dim_users (
    user_key BIGINT NOT NULL,
    user_id INTEGER NOT NULL,
    PRIMARY KEY (user_key)
);

CREATE TABLE IF NOT EXISTS analytics.dim_apartments (
    apartment_key BIGINT NOT NULL,
    apartment_id INTEGER NOT NULL,
    location_key BIGINT,
    current_price DECIMAL(10,2),
    status VARCHAR(50),
    effective_date DATE NOT NULL,
    end_date DATE,
    is_current BOOLEAN NOT NULL,
    PRIMARY KEY (apartment_key)
);

CREATE TABLE IF NOT EXISTS analytics.fact_bookings (
    booking_key BIGINT NOT NULL,
    booking_id INTEGER NOT NULL,
    apartment_key BIGINT,
    user_key BIGINT,
    booking_date DATE,
    amount DECIMAL(10,2),
    duration_days INTEGER,
    PRIMARY KEY (booking_key)
);

CREATE TABLE IF NOT EXISTS analytics.fact_viewings (
    viewing_key BIGINT NOT NULL,
    viewing_id INTEGER NOT NULL,
    apartment_key BIGINT,
    user_key BIGINT,
    viewing_date TIMESTAMP,
    PRIMARY KEY (viewing_key)
);

CREATE TABLE IF NOT EXISTS analytics.stage_dim_locations (LIKE analytics.dim_locations);
CREATE TABLE IF NOT EXISTS analytics.stage_dim_users (LIKE analytics.dim_users);
CREATE TABLE IF NOT EXISTS analytics.stage_dim_apartments (LIKE analytics.dim_apartments);
CREATE TABLE IF NOT EXISTS analytics.stage_fact_bookings (LIKE analytics.fact_bookings);
CREATE TABLE IF NOT EXISTS analytics.stage_fact_viewings (LIKE analytics.fact_viewings);

CREATE TABLE IF NOT EXISTS analytics.load_history (
    load_date DATE NOT NULL,
    table_name VARCHAR(64) NOT NULL,
    row_count BIGINT NOT NULL,
    loaded_at TIMESTAMP NOT NULL
);
