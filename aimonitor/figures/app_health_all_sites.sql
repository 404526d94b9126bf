WITH RECURSIVE apps(app_type) AS (
    (SELECT app_type FROM {table} ORDER BY app_type LIMIT 1)
    UNION ALL
    SELECT (SELECT r.app_type FROM {table} r WHERE r.app_type > apps.app_type
            ORDER BY r.app_type LIMIT 1)
    FROM apps WHERE apps.app_type IS NOT NULL
)
SELECT newest.app_type, newest.status, newest.created_at
FROM apps
CROSS JOIN LATERAL (
    SELECT r.app_type, r.status, r.created_at FROM {table} r
    WHERE r.app_type = apps.app_type
    ORDER BY r.created_at DESC LIMIT 1
) newest
WHERE apps.app_type IS NOT NULL
ORDER BY newest.app_type
