-- Bookings and money per user.
SELECT u.user_id, COUNT(*) AS bookings, SUM(b.amount) AS total_amount
FROM analytics.fact_bookings b
JOIN analytics.dim_users u ON u.user_key = b.user_key
GROUP BY u.user_id
