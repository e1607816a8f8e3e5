package password

import (
	"crypto/sha1" //nolint:gosec // PBKDF2-HMAC-SHA1 hashes from other systems are verified, never written
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/bits"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/pbkdf2"
	"golang.org/x/crypto/scrypt"

	"github.com/gatehouse/gatehouse/internal/password/argon2id"
)

// Formats of the password hashes gatehouse verifies. It writes argon2id
// only; the others come from imports (users moved in from another system)
// and are replaced by argon2id at the account's first successful login.
const (
	FormatNone           = "none" // no password: the account has none yet
	FormatArgon2id       = "argon2id"
	FormatArgon2i        = "argon2i"
	FormatBcrypt         = "bcrypt"
	FormatPBKDF2         = "pbkdf2"          // PHC ($pbkdf2-sha256$i=N,l=L$...) and passlib ($pbkdf2-sha256$N$...)
	FormatWerkzeugPBKDF2 = "werkzeug-pbkdf2" // pbkdf2:sha256:N$salt$hex
	FormatWerkzeugScrypt = "werkzeug-scrypt" // scrypt:n:r:p$salt$hex
)

// Bounds on what an imported hash may cost to verify: the current defaults
// of the formats' own tools, and a little more. A hash beyond them is
// refused at import, and still matches no password if a row is altered
// later, so no stored string in another format can make a login take
// seconds of CPU or allocate more than MaxLegacyMemoryKiB. argon2id rows
// keep Verify's wider bounds (this service may have written them at a
// higher cost than today's); one above the budget takes all of it, so such
// verifications run one at a time.
const (
	// MaxLegacyMemoryKiB bounds the memory of one legacy verification
	// (scrypt's 128·n·r bytes, argon2's m KiB): Werkzeug's scrypt maximum
	// n=65536 with r=8 is 64 MiB. It is also the budget all legacy
	// verifications in flight share (see Hasher).
	MaxLegacyMemoryKiB = 64 * 1024
	// MaxPBKDF2Iterations is about Django 6's 1.2 M (Werkzeug 3: 1 M).
	MaxPBKDF2Iterations = 1_200_000
	// MaxBcryptCost is 2^14 rounds, about a second on one core.
	MaxBcryptCost = 14
	// maxArgon2Time bounds argon2's passes; with the memory bound, a
	// verification stays below a quarter of a second or so.
	maxArgon2Time = 10
	// maxArgon2Work bounds m·t (KiB·passes): 64 MiB with 4 passes.
	maxArgon2Work = 4 * MaxLegacyMemoryKiB
	// maxArgon2Lanes bounds p: lanes run one after the other here.
	maxArgon2Lanes = 16
	// maxScryptP bounds scrypt's p (Werkzeug: 1): time grows with n·r·p.
	maxScryptP = 4
	// maxEncodedLen bounds the length of any stored hash string.
	maxEncodedLen = 512
	// minSaltLen is the shortest salt accepted (Werkzeug before 2.3 and
	// many others wrote 8).
	minSaltLen = 8
)

// ErrUnsupportedHash means a hash string is in no format gatehouse reads.
var ErrUnsupportedHash = errors.New("unsupported password hash format")

// ErrNoPassword means the account has no password (an import without one):
// it matches nothing until the owner sets one.
var ErrNoPassword = errors.New("account has no password")

// CostError refuses a hash whose parameters exceed the bounds above (or are
// too small to be honest, like a truncated salt).
type CostError struct{ Reason string }

func (e *CostError) Error() string { return "password hash out of bounds: " + e.Reason }

// legacy is a parsed hash in a format other than our argon2id.
type legacy struct {
	format string
	// memKiB is the memory its verification allocates beyond a slot's own.
	memKiB uint32
	// verify reports whether pw matches, in constant time for a given hash.
	verify func(pw []byte, m *argon2id.Memory) bool
}

// Inspect parses a password hash as an import would store it and checks its
// parameters against the bounds: it returns the format, or an error naming
// what is wrong (ErrUnsupportedHash, or a *CostError). It computes nothing.
// An empty string is FormatNone.
func Inspect(encoded string) (string, error) {
	if encoded == "" {
		return FormatNone, nil
	}
	l, err := parse(encoded)
	if err != nil {
		return "", err
	}
	return l.format, nil
}

// parse reads every format Verify accepts, argon2id included.
func parse(s string) (legacy, error) {
	if len(s) > maxEncodedLen {
		return legacy{}, &CostError{Reason: "hash string longer than 512 characters"}
	}
	switch {
	case strings.HasPrefix(s, "$argon2id$"), strings.HasPrefix(s, "$argon2i$"):
		return parseArgon2(s)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "$pbkdf2"):
		return parsePBKDF2(s)
	case strings.HasPrefix(s, "pbkdf2:"):
		return parseWerkzeugPBKDF2(s)
	case strings.HasPrefix(s, "scrypt:"):
		return parseWerkzeugScrypt(s)
	}
	return legacy{}, ErrUnsupportedHash
}

func malformed(format, what string) error {
	return fmt.Errorf("%w: %s: %s", ErrUnsupportedHash, format, what)
}

// parseArgon2 reads $argon2id$ and $argon2i$ PHC strings (version 19 only:
// x/crypto implements no other).
func parseArgon2(s string) (legacy, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 {
		return legacy{}, malformed("argon2", "not $argon2X$v=19$m=M,t=T,p=P$salt$hash")
	}
	format := parts[1]
	if parts[2] != "v=19" {
		return legacy{}, malformed(format, "only version 19 is supported")
	}
	var m, t, p uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || n != 3 ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) {
		return legacy{}, malformed(format, "parameters are not m=M,t=T,p=P")
	}
	switch {
	case m == 0 || t == 0 || p == 0 || m < 8*p:
		return legacy{}, &CostError{Reason: format + " parameters too small"}
	case m > MaxLegacyMemoryKiB:
		return legacy{}, &CostError{Reason: fmt.Sprintf("%s memory above %d KiB", format, MaxLegacyMemoryKiB)}
	case t > maxArgon2Time || uint64(m)*uint64(t) > maxArgon2Work:
		return legacy{}, &CostError{Reason: format + " time cost too high"}
	case p > maxArgon2Lanes:
		return legacy{}, &CostError{Reason: fmt.Sprintf("%s parallelism above %d", format, maxArgon2Lanes)}
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return legacy{}, malformed(format, "salt is not unpadded base64")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return legacy{}, malformed(format, "hash is not unpadded base64")
	}
	if len(salt) < minSaltLen {
		return legacy{}, &CostError{Reason: format + " salt shorter than 8 bytes"}
	}
	if len(key) < 16 || len(key) > 64 {
		return legacy{}, &CostError{Reason: format + " hash length outside 16-64 bytes"}
	}
	l := legacy{format: format, memKiB: m}
	lanes, keyLen := uint8(p), uint32(len(key)) //nolint:gosec // both bounded above
	// Both in the slot's memory, lanes in turn on the slot's thread
	// (x/crypto's argon2.Key would run a goroutine per lane, outside the
	// slots' CPU bound and low priority).
	derive := (*argon2id.Memory).Key
	if format == FormatArgon2i {
		derive = (*argon2id.Memory).KeyI
	}
	l.verify = func(pw []byte, mem *argon2id.Memory) bool {
		return subtle.ConstantTimeCompare(derive(mem, pw, salt, nil, nil, t, m, lanes, keyLen), key) == 1
	}
	return l, nil
}

// parseBcrypt reads $2a$, $2b$ and $2y$ (PHP's name for $2b$) strings.
func parseBcrypt(s string) (legacy, error) {
	if len(s) != 60 {
		return legacy{}, malformed(FormatBcrypt, "not 60 characters long")
	}
	// x/crypto reads the minor version but treats every one alike, which is
	// right for $2a$, $2b$ and $2y$ on passwords up to 72 bytes.
	cost, err := bcrypt.Cost([]byte(s))
	if err != nil {
		return legacy{}, malformed(FormatBcrypt, "unreadable cost or salt")
	}
	if cost > MaxBcryptCost {
		return legacy{}, &CostError{Reason: fmt.Sprintf("bcrypt cost above %d", MaxBcryptCost)}
	}
	enc := []byte(s)
	return legacy{format: FormatBcrypt, verify: func(pw []byte, _ *argon2id.Memory) bool {
		// bcrypt reads at most 72 bytes; x/crypto refuses longer passwords
		// where other implementations ignored the rest, so do the same.
		if len(pw) > 72 {
			pw = pw[:72]
		}
		return bcrypt.CompareHashAndPassword(enc, pw) == nil
	}}, nil
}

// pbkdf2Hashes are the digests PBKDF2 hashes may use, by the names the
// formats give them.
var pbkdf2Hashes = map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New}

// parsePBKDF2 reads PHC strings ($pbkdf2-sha256$i=N,l=L$salt$hash, standard
// base64 without padding, as Ory Kratos writes them) and passlib's
// ($pbkdf2-sha256$N$salt$hash, "adapted" base64: '.' for '+', no padding;
// $pbkdf2$ is SHA-1).
func parsePBKDF2(s string) (legacy, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 5 {
		return legacy{}, malformed(FormatPBKDF2, "not $pbkdf2-DIGEST$params$salt$hash")
	}
	digest := "sha1"
	if d, ok := strings.CutPrefix(parts[1], "pbkdf2-"); ok {
		digest = d
	} else if parts[1] != "pbkdf2" {
		return legacy{}, ErrUnsupportedHash
	}
	newHash, ok := pbkdf2Hashes[digest]
	if !ok {
		return legacy{}, malformed(FormatPBKDF2, "digest "+digest+" is not sha1, sha256 or sha512")
	}
	var iter, keyLen int
	b64 := base64.RawStdEncoding
	if strings.HasPrefix(parts[2], "i=") {
		// PHC: keyLen may be given (l=), else it is the hash's length.
		for kv := range strings.SplitSeq(parts[2], ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.Atoi(v)
			if err != nil {
				return legacy{}, malformed(FormatPBKDF2, "parameters are not i=N[,l=L]")
			}
			switch k {
			case "i":
				iter = n
			case "l":
				keyLen = n
			default:
				return legacy{}, malformed(FormatPBKDF2, "unknown parameter "+k)
			}
		}
	} else {
		n, err := strconv.Atoi(parts[2])
		if err != nil {
			return legacy{}, malformed(FormatPBKDF2, "iterations are not a number")
		}
		iter = n
		b64 = base64.RawStdEncoding // after '.' → '+' below
		parts[3], parts[4] = strings.ReplaceAll(parts[3], ".", "+"), strings.ReplaceAll(parts[4], ".", "+")
	}
	salt, err := b64.DecodeString(parts[3])
	if err != nil {
		return legacy{}, malformed(FormatPBKDF2, "salt is not base64")
	}
	key, err := b64.DecodeString(parts[4])
	if err != nil {
		return legacy{}, malformed(FormatPBKDF2, "hash is not base64")
	}
	if keyLen != 0 && keyLen != len(key) {
		return legacy{}, malformed(FormatPBKDF2, "hash length differs from l=")
	}
	return pbkdf2Hash(FormatPBKDF2, newHash, iter, salt, key)
}

func pbkdf2Hash(format string, newHash func() hash.Hash, iter int, salt, key []byte) (legacy, error) {
	switch {
	case iter < 1:
		return legacy{}, &CostError{Reason: "pbkdf2 iterations below 1"}
	case iter > MaxPBKDF2Iterations:
		return legacy{}, &CostError{Reason: fmt.Sprintf("pbkdf2 iterations above %d", MaxPBKDF2Iterations)}
	case len(salt) < minSaltLen:
		return legacy{}, &CostError{Reason: "pbkdf2 salt shorter than 8 bytes"}
	case len(key) < 16 || len(key) > 64:
		return legacy{}, &CostError{Reason: "pbkdf2 hash length outside 16-64 bytes"}
	}
	return legacy{format: format, verify: func(pw []byte, _ *argon2id.Memory) bool {
		return subtle.ConstantTimeCompare(pbkdf2.Key(pw, salt, iter, len(key), newHash), key) == 1
	}}, nil
}

// werkzeugParts splits Werkzeug's "method$salt$hexhash": the salt is used
// as its UTF-8 text, the hash is hexadecimal.
func werkzeugParts(format, s string) (method string, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 3 {
		return "", nil, nil, malformed(format, "not method$salt$hash")
	}
	key, err = hex.DecodeString(parts[2])
	if err != nil {
		return "", nil, nil, malformed(format, "hash is not hexadecimal")
	}
	return parts[0], []byte(parts[1]), key, nil
}

// parseWerkzeugPBKDF2 reads pbkdf2:DIGEST:N$salt$hex. Werkzeug also wrote
// "pbkdf2:sha256$..." with the iterations of its version of the day; that
// number is not in the string, so such hashes are refused.
func parseWerkzeugPBKDF2(s string) (legacy, error) {
	method, salt, key, err := werkzeugParts(FormatWerkzeugPBKDF2, s)
	if err != nil {
		return legacy{}, err
	}
	f := strings.Split(method, ":")
	if len(f) != 3 {
		return legacy{}, malformed(FormatWerkzeugPBKDF2, "method is not pbkdf2:DIGEST:ITERATIONS")
	}
	newHash, ok := pbkdf2Hashes[f[1]]
	if !ok {
		return legacy{}, malformed(FormatWerkzeugPBKDF2, "digest "+f[1]+" is not sha1, sha256 or sha512")
	}
	iter, err := strconv.Atoi(f[2])
	if err != nil {
		return legacy{}, malformed(FormatWerkzeugPBKDF2, "iterations are not a number")
	}
	if len(key) != newHash().Size() {
		return legacy{}, &CostError{Reason: "pbkdf2 hash length is not the digest's"}
	}
	return pbkdf2Hash(FormatWerkzeugPBKDF2, newHash, iter, salt, key)
}

// parseWerkzeugScrypt reads scrypt:n:r:p$salt$hex (Werkzeug 2.3 and later;
// the default is scrypt:32768:8:1, a 64-byte key).
func parseWerkzeugScrypt(s string) (legacy, error) {
	method, salt, key, err := werkzeugParts(FormatWerkzeugScrypt, s)
	if err != nil {
		return legacy{}, err
	}
	f := strings.Split(method, ":")
	if len(f) != 4 {
		return legacy{}, malformed(FormatWerkzeugScrypt, "method is not scrypt:N:R:P")
	}
	var nrp [3]int
	for i, v := range f[1:] {
		if nrp[i], err = strconv.Atoi(v); err != nil {
			return legacy{}, malformed(FormatWerkzeugScrypt, "parameters are not numbers")
		}
	}
	n, r, p := nrp[0], nrp[1], nrp[2]
	switch {
	case n < 2 || bits.OnesCount(uint(n)) != 1 || r < 1 || p < 1:
		return legacy{}, &CostError{Reason: "scrypt n is not a power of two above 1, or r or p below 1"}
	case n > 65536:
		return legacy{}, &CostError{Reason: "scrypt n above 65536"}
	case r > 16 || 128*n*r > MaxLegacyMemoryKiB*1024:
		return legacy{}, &CostError{Reason: fmt.Sprintf("scrypt memory (128·n·r) above %d MiB", MaxLegacyMemoryKiB/1024)}
	case p > maxScryptP:
		return legacy{}, &CostError{Reason: fmt.Sprintf("scrypt p above %d", maxScryptP)}
	case len(salt) < minSaltLen:
		return legacy{}, &CostError{Reason: "scrypt salt shorter than 8 bytes"}
	case len(key) < 16 || len(key) > 128:
		return legacy{}, &CostError{Reason: "scrypt hash length outside 16-128 bytes"}
	}
	return legacy{format: FormatWerkzeugScrypt, memKiB: uint32(128 * n * r / 1024), verify: func(pw []byte, _ *argon2id.Memory) bool { //nolint:gosec // bounded above
		got, err := scrypt.Key(pw, salt, n, r, p, len(key))
		return err == nil && subtle.ConstantTimeCompare(got, key) == 1
	}}, nil
}
