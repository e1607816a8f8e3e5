-- name: CreateUser :one
INSERT INTO users (id, email, password_hash, name, email_verified_at)
VALUES (sqlc.arg(id), sqlc.arg(email), sqlc.arg(password_hash), sqlc.narg(name), sqlc.narg(email_verified_at))
RETURNING *;

-- name: GetUserByID :one
SELECT * FROM users WHERE id = sqlc.arg(id) AND deleted_at IS NULL;

-- name: GetUserByEmail :one
SELECT * FROM users WHERE email = sqlc.arg(email) AND deleted_at IS NULL;
