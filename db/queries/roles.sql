-- name: ListRoles :many
SELECT r.name, r.description,
       coalesce(array_agg(rp.permission ORDER BY rp.permission) FILTER (WHERE rp.permission IS NOT NULL), '{}')::text[] AS permissions
FROM roles r
LEFT JOIN role_permissions rp ON rp.role = r.name
GROUP BY r.name, r.description
ORDER BY r.name;

-- name: AddUserRole :exec
INSERT INTO user_roles (user_id, role) VALUES (sqlc.arg(user_id), sqlc.arg(role))
ON CONFLICT DO NOTHING;

-- name: ListUserRoles :many
SELECT role FROM user_roles WHERE user_id = sqlc.arg(user_id) ORDER BY role;

-- name: ListUserPermissions :many
SELECT DISTINCT rp.permission
FROM user_roles ur
JOIN role_permissions rp ON rp.role = ur.role
WHERE ur.user_id = sqlc.arg(user_id)
ORDER BY rp.permission;
