-- Occupancy per location and month: booked nights over (nights in the month x the location's current apartments).
-- A booking's nights are split across the months they fall in; its location is that of the version it booked.
-- Each stay is expanded into the months it touches only, never into a calendar from the first booking to the
-- last: a booking dated years away from the others costs one row, not one per month in between.
INSERT INTO analytics.kpi_occupancy_rate (location_name, month_start, booked_nights, available_nights, occupancy_rate)
WITH RECURSIVE stay_months (location_key, first_night, checkout, month_start) AS (
    SELECT a.location_key, b.booking_date, ADD_DAYS(b.booking_date, b.duration_days),
           CAST(DATE_TRUNC('month', b.booking_date) AS DATE)
    FROM analytics.fact_bookings b
    JOIN analytics.dim_apartments a ON a.apartment_key = b.apartment_key
    UNION ALL
    SELECT location_key, first_night, checkout, ADD_MONTHS(month_start, 1) FROM stay_months
    WHERE ADD_MONTHS(month_start, 1) < checkout
),
listings AS (
    SELECT location_key, COUNT(*) AS apartments FROM analytics.dim_apartments WHERE is_current GROUP BY location_key
),
nights AS (
    SELECT location_key, month_start,
           SUM(DAYS_BETWEEN(GREATEST(first_night, month_start), LEAST(checkout, ADD_MONTHS(month_start, 1)))) AS booked_nights
    FROM stay_months
    WHERE checkout > month_start
    GROUP BY location_key, month_start
)
SELECT l.location_name, n.month_start, n.booked_nights,
       DAYS_BETWEEN(n.month_start, ADD_MONTHS(n.month_start, 1)) * c.apartments AS available_nights,
       CAST(n.booked_nights AS DOUBLE PRECISION) / (DAYS_BETWEEN(n.month_start, ADD_MONTHS(n.month_start, 1)) * c.apartments) AS occupancy_rate
FROM nights n
JOIN listings c ON c.location_key = n.location_key
JOIN analytics.dim_locations l ON l.location_key = n.location_key
