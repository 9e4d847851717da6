-- Bookings and money per user.
INSERT INTO analytics.kpi_bookings_per_user (user_id, bookings, total_amount)
SELECT u.user_id, COUNT(*) AS bookings, SUM(b.amount) AS total_amount
FROM analytics.fact_bookings b
JOIN analytics.dim_users u ON u.user_key = b.user_key
GROUP BY u.user_id
