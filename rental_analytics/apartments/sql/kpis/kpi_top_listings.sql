-- The 100 listings with the most booking revenue, with their current location.
INSERT INTO analytics.kpi_top_listings (apartment_id, location_name, revenue, bookings, revenue_rank)
SELECT apartment_id, location_name, revenue, bookings, revenue_rank FROM (
    SELECT a.apartment_id, MAX(cl.location_name) AS location_name, SUM(b.amount) AS revenue, COUNT(*) AS bookings,
           RANK() OVER (ORDER BY SUM(b.amount) DESC) AS revenue_rank
    FROM analytics.fact_bookings b
    JOIN analytics.dim_apartments a ON a.apartment_key = b.apartment_key
    LEFT JOIN analytics.dim_apartments c ON c.apartment_id = a.apartment_id AND c.is_current
    LEFT JOIN analytics.dim_locations cl ON cl.location_key = c.location_key
    GROUP BY a.apartment_id
) ranked
WHERE revenue_rank <= 100
