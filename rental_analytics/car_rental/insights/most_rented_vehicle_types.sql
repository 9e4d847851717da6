-- Vehicle types by number of rentals, highest first.
SELECT vehicle_type, rental_count, total_revenue, unique_vehicles
FROM vehicle_type_performance
ORDER BY rental_count DESC, vehicle_type ASC NULLS LAST
