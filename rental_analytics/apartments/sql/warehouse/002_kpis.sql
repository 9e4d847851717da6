-- The KPI tables (contract, section 4), refreshed from the model after every load.
CREATE TABLE IF NOT EXISTS analytics.kpi_average_listing_price (
    location_name VARCHAR(255) NOT NULL,
    current_listings BIGINT NOT NULL,
    average_price DECIMAL(12,2)
);

CREATE TABLE IF NOT EXISTS analytics.kpi_occupancy_rate (
    location_name VARCHAR(255) NOT NULL,
    month_start DATE NOT NULL,
    booked_nights BIGINT NOT NULL,
    available_nights BIGINT NOT NULL,
    occupancy_rate DOUBLE PRECISION
);

CREATE TABLE IF NOT EXISTS analytics.kpi_popular_locations (
    location_name VARCHAR(255) NOT NULL,
    bookings BIGINT NOT NULL,
    popularity_rank BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS analytics.kpi_top_listings (
    apartment_id INTEGER NOT NULL,
    location_name VARCHAR(255),
    revenue DECIMAL(18,2) NOT NULL,
    bookings BIGINT NOT NULL,
    revenue_rank BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS analytics.kpi_bookings_per_user (
    user_id INTEGER NOT NULL,
    bookings BIGINT NOT NULL,
    total_amount DECIMAL(18,2)
);

CREATE TABLE IF NOT EXISTS analytics.kpi_average_booking_duration (
    bookings BIGINT NOT NULL,
    average_duration_days DOUBLE PRECISION
);

CREATE TABLE IF NOT EXISTS analytics.kpi_repeat_customer_rate (
    customers BIGINT NOT NULL,
    repeat_customers BIGINT NOT NULL,
    repeat_customer_rate DOUBLE PRECISION
);
