-- The 10 users who spent the most, with their names (ties: user_id ascending).
SELECT user_id, first_name, last_name, total_spent, rental_count
FROM user_metrics
ORDER BY total_spent DESC, user_id ASC
LIMIT 10
