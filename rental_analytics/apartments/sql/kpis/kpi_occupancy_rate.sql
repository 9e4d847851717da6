-- Occupancy per location and month: booked nights over (nights in the month x the location's current apartments).
-- A booking's nights are split across the months they fall in; its location is that of the version it booked.
INSERT INTO analytics.kpi_occupancy_rate (location_name, month_start, booked_nights, available_nights, occupancy_rate)
WITH RECURSIVE months (month_start) AS (
    SELECT CAST(DATE_TRUNC('month', MIN(booking_date)) AS DATE) FROM analytics.fact_bookings
    UNION ALL
    SELECT ADD_MONTHS(month_start, 1) FROM months
    WHERE month_start < (SELECT MAX(ADD_DAYS(booking_date, duration_days)) FROM analytics.fact_bookings)
),
stays AS (
    SELECT a.location_key, b.booking_date AS first_night, ADD_DAYS(b.booking_date, b.duration_days) AS checkout
    FROM analytics.fact_bookings b
    JOIN analytics.dim_apartments a ON a.apartment_key = b.apartment_key
),
listings AS (
    SELECT location_key, COUNT(*) AS apartments FROM analytics.dim_apartments WHERE is_current GROUP BY location_key
),
nights AS (
    SELECT s.location_key, m.month_start,
           SUM(DAYS_BETWEEN(GREATEST(s.first_night, m.month_start), LEAST(s.checkout, ADD_MONTHS(m.month_start, 1)))) AS booked_nights
    FROM stays s
    JOIN months m ON s.first_night < ADD_MONTHS(m.month_start, 1) AND s.checkout > m.month_start
    GROUP BY s.location_key, m.month_start
)
SELECT l.location_name, n.month_start, n.booked_nights,
       DAYS_BETWEEN(n.month_start, ADD_MONTHS(n.month_start, 1)) * c.apartments AS available_nights,
       CAST(n.booked_nights AS DOUBLE PRECISION) / (DAYS_BETWEEN(n.month_start, ADD_MONTHS(n.month_start, 1)) * c.apartments) AS occupancy_rate
FROM nights n
JOIN listings c ON c.location_key = n.location_key
JOIN analytics.dim_locations l ON l.location_key = n.location_key
