-- Average booking duration in nights, over every booking.
INSERT INTO analytics.kpi_average_booking_duration (bookings, average_duration_days)
SELECT COUNT(*) AS bookings, AVG(CAST(duration_days AS DOUBLE PRECISION)) AS average_duration_days
FROM analytics.fact_bookings
