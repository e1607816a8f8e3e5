package account

// Action names what an audit event records. The contract's AuditAction enum
// lists exactly these (a test compares them); the README describes each.
type Action string

// The actions gatehouse records.
const (
	ActionRateLimitBlocked            Action = "rate_limit.blocked"                  // A request was refused by a rate limit
	ActionSessionLogout               Action = "session.logout"                      // A session logged out
	ActionRefreshTokenReused          Action = "session.refresh_token_reused"        // A spent refresh token came back: the session was revoked
	ActionSessionRevoked              Action = "session.revoked"                     // The user ended one of their sessions
	ActionUserCreated                 Action = "user.created"                        // An administrator (or create-admin) created an account
	ActionUserDeleted                 Action = "user.deleted"                        // An account was soft-deleted
	ActionUserDisabled                Action = "user.disabled"                       // An administrator disabled an account
	ActionEmailChangeRequested        Action = "user.email.change_requested"         // The user asked to change their address
	ActionEmailChangeReverted         Action = "user.email.change_reverted"          // An email change was undone from the old address
	ActionEmailChanged                Action = "user.email.changed"                  // An email change was confirmed
	ActionVerificationRequested       Action = "user.email.verification_requested"   // A verification mail was asked for
	ActionEmailVerified               Action = "user.email.verified"                 // An address was verified
	ActionUserEnabled                 Action = "user.enabled"                        // An administrator enabled an account
	ActionLoginFailed                 Action = "user.login.failed"                   // A login failed
	ActionLoginGuessingAlerted        Action = "user.login.guessing_alerted"         // The owner was mailed about repeated failed logins
	ActionLoginLocked                 Action = "user.login.locked"                   // A login was refused by the lockout
	ActionLoginSucceeded              Action = "user.login.succeeded"                // A login opened a session
	ActionLoginUnverified             Action = "user.login.unverified"               // A correct password was refused: the address is not verified
	ActionLogoutAll                   Action = "user.logout_all"                     // The user ended every session
	ActionPasswordChanged             Action = "user.password.changed"               // The password was changed
	ActionPasswordCheckFailed         Action = "user.password.check_failed"          // A signed-in user gave a wrong current password
	ActionPasswordReset               Action = "user.password.reset"                 // The password was reset with a mailed token
	ActionPasswordResetRequested      Action = "user.password.reset_requested"       // A reset mail was asked for
	ActionRegisterEmailTaken          Action = "user.register.email_taken"           // A registration named an address already in use
	ActionUserRegistered              Action = "user.registered"                     // An account was created by registration
	ActionUserRestored                Action = "user.restored"                       // A soft-deleted account was restored
	ActionRolesChanged                Action = "user.roles.changed"                  // The roles of an account changed
	ActionSessionsRevoked             Action = "user.sessions.revoked"               // An administrator ended every session of an account
	ActionUserUpdated                 Action = "user.updated"                        // Fields of an account changed
	ActionLoginMFARequired            Action = "user.login.mfa_required"             // A correct password was answered with an MFA challenge
	ActionMFAEnrolmentStarted         Action = "user.mfa.enrolment_started"          // The user started a TOTP enrolment
	ActionMFAEnabled                  Action = "user.mfa.enabled"                    // The user confirmed a TOTP enrolment: MFA is on
	ActionMFADisabled                 Action = "user.mfa.disabled"                   // The user turned MFA off
	ActionMFAReset                    Action = "user.mfa.reset"                      // An administrator removed the user's MFA
	ActionMFACodeRejected             Action = "user.mfa.code_rejected"              // A wrong, replayed or used code was refused
	ActionMFARecoveryCodeUsed         Action = "user.mfa.recovery_code_used"         // A recovery code completed a login
	ActionMFARecoveryCodesRegenerated Action = "user.mfa.recovery_codes_regenerated" // The user replaced their recovery codes
	ActionMFASteppedUp                Action = "user.mfa.stepped_up"                 // A session was stepped up to MFA
	ActionUsersImported               Action = "user.imported"                       // A batch of accounts was imported (created or updated)
)

// Permission names what a role grants and an operation may need (the
// contract's x-permissions). The contract's Permission enum lists exactly
// these, and the migrations seed them.
type Permission = string

// The permissions.
const (
	PermUsersRead      Permission = "users:read"
	PermUsersWrite     Permission = "users:write"
	PermUsersDelete    Permission = "users:delete"
	PermRolesRead      Permission = "roles:read"
	PermRolesAssign    Permission = "roles:assign"
	PermSessionsRevoke Permission = "sessions:revoke"
	PermAuditRead      Permission = "audit:read"
	PermMFAReset       Permission = "mfa:reset"
	PermUsersImport    Permission = "users:import"
)
