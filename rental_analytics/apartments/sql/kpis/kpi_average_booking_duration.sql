-- Average booking duration in nights, over every booking.
SELECT COUNT(*) AS bookings, AVG(CAST(duration_days AS DOUBLE PRECISION)) AS average_duration_days
FROM analytics.fact_bookings
