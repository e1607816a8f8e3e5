package auth

import "github.com/gatehouse/gatehouse/internal/account"

// ParseEmail applies ParseEmail with this deployment's setting.
func (s *Service) ParseEmail(raw string) (string, error) {
	return account.ParseEmail(raw, s.set.AllowLocalEmailDomains)
}
