// Package token issues and verifies gatehouse's access tokens: JWTs signed
// with Ed25519 (EdDSA), keys identified by their RFC 7638 thumbprint and
// published as a JWKS.
package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
)

// Key is one Ed25519 signing key.
type Key struct {
	ID      string
	private ed25519.PrivateKey
	public  ed25519.PublicKey
}

// NewKey wraps a private key, deriving its id.
func NewKey(priv ed25519.PrivateKey) Key {
	pub := priv.Public().(ed25519.PublicKey)
	return Key{ID: Thumbprint(pub), private: priv, public: pub}
}

// GenerateKey makes an ephemeral key (development only: tokens die with the
// process and differ between instances).
func GenerateKey() (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	return NewKey(priv), nil
}

// LoadKeyFile reads a PKCS#8 PEM Ed25519 private key, as
// `openssl genpkey -algorithm ed25519` writes it.
func LoadKeyFile(path string) (Key, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the path is the operator's setting
	if err != nil {
		return Key{}, fmt.Errorf("read signing key: %w", err)
	}
	return ParseKeyPEM(b)
}

// ParseKeyPEM parses a PKCS#8 PEM Ed25519 private key.
func ParseKeyPEM(b []byte) (Key, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return Key{}, fmt.Errorf("signing key: want a PEM \"PRIVATE KEY\" (PKCS#8) block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return Key{}, fmt.Errorf("signing key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return Key{}, fmt.Errorf("signing key: want Ed25519, got %T", k)
	}
	return NewKey(priv), nil
}

// MarshalKeyPEM encodes a key as PKCS#8 PEM (tests and tooling).
func MarshalKeyPEM(k Key) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key.
func Thumbprint(pub ed25519.PublicKey) string {
	// Members in lexicographic order, no whitespace (RFC 7638 section 3).
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// JWK is the public half of a key, as published.
type JWK struct {
	Kty, Crv, X, Kid, Use, Alg string
}

// Public returns the key's JWK.
func (k Key) Public() JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.public), Kid: k.ID, Use: "sig", Alg: "EdDSA"}
}
