-- Locations by utilization rate, highest first.
SELECT location_id, location_name, utilization_rate, total_rental_hours, unique_vehicles
FROM location_performance
ORDER BY utilization_rate DESC NULLS LAST, location_id ASC
