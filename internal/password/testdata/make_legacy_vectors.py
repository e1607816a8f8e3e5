#!/usr/bin/python3
"""Writes legacy_vectors.json: password hashes made by other tools than
gatehouse, for internal/password's tests (TestVerify_LegacyVectors).

- Werkzeug's pbkdf2:... and scrypt:... strings, made as
  werkzeug.security.generate_password_hash makes them (werkzeug/security.py,
  _hash_internal), with Python's hashlib;
- bcrypt from python3-bcrypt ($2b$) and Apache's htpasswd -B ($2y$);
- passlib's $pbkdf2-sha256$ (adapted base64) from python3-passlib;
- argon2i and argon2id from the reference implementation's CLI (argon2).

Debian: apt-get install python3-bcrypt python3-passlib apache2-utils argon2
Run from this directory: /usr/bin/python3 make_legacy_vectors.py
"""
import base64
import hashlib
import json
import secrets
import string
import subprocess

import bcrypt
from passlib.hash import pbkdf2_sha256, pbkdf2_sha512

SALT_CHARS = string.ascii_letters + string.digits


def gen_salt(n):
    # werkzeug.security.gen_salt
    return "".join(secrets.choice(SALT_CHARS) for _ in range(n))


def werkzeug_pbkdf2(pw, digest="sha256", iterations=600000, salt_len=16):
    salt = gen_salt(salt_len)
    h = hashlib.pbkdf2_hmac(digest, pw.encode(), salt.encode(), iterations).hex()
    return f"pbkdf2:{digest}:{iterations}${salt}${h}"


def werkzeug_scrypt(pw, n=2**15, r=8, p=1, salt_len=16):
    salt = gen_salt(salt_len)
    maxmem = 132 * n * r * p
    h = hashlib.scrypt(pw.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=maxmem).hex()
    return f"scrypt:{n}:{r}:{p}${salt}${h}"


def htpasswd_bcrypt(pw, cost=5):
    out = subprocess.run(["htpasswd", "-nbB", "-C", str(cost), "u", pw], check=True, capture_output=True, text=True).stdout
    return out.strip().split(":", 1)[1]


def argon2_cli(pw, variant, t, m_log2, p):
    salt = gen_salt(16)
    out = subprocess.run(["argon2", salt, "-" + variant, "-t", str(t), "-m", str(m_log2), "-p", str(p), "-e"],
                         input=pw.encode(), check=True, capture_output=True).stdout
    return out.decode().strip()


PW = "correct horse battery staple"
UNI = "pässwörd ünïcode 密码"  # hashed as UTF-8 bytes, as given (not normalised)

vectors = [
    ("werkzeug-pbkdf2", "werkzeug 2.3 default (hashlib)", PW, werkzeug_pbkdf2(PW)),
    ("werkzeug-pbkdf2", "werkzeug, 8-char salt, 150000 (hashlib)", UNI, werkzeug_pbkdf2(UNI, iterations=150000, salt_len=8)),
    ("werkzeug-pbkdf2", "werkzeug sha512 (hashlib)", PW, werkzeug_pbkdf2(PW, digest="sha512", iterations=1000)),
    ("werkzeug-scrypt", "werkzeug 3 default scrypt:32768:8:1 (hashlib)", PW, werkzeug_scrypt(PW)),
    ("werkzeug-scrypt", "werkzeug scrypt:1024:8:2 (hashlib)", UNI, werkzeug_scrypt(UNI, n=1024, r=8, p=2)),
    ("bcrypt", "python3-bcrypt $2b$", PW, bcrypt.hashpw(PW.encode(), bcrypt.gensalt(rounds=5)).decode()),
    ("bcrypt", "python3-bcrypt $2a$", UNI, bcrypt.hashpw(UNI.encode(), bcrypt.gensalt(rounds=4, prefix=b"2a")).decode()),
    ("bcrypt", "htpasswd -B $2y$", PW, htpasswd_bcrypt(PW)),
    ("pbkdf2", "passlib pbkdf2_sha256 default", PW, pbkdf2_sha256.hash(PW)),
    ("pbkdf2", "passlib pbkdf2_sha512", UNI, pbkdf2_sha512.using(rounds=1000).hash(UNI)),
    ("argon2i", "argon2 CLI -i", PW, argon2_cli(PW, "i", 2, 12, 1)),
    ("argon2id", "argon2 CLI -id, 4 lanes", UNI, argon2_cli(UNI, "id", 3, 13, 4)),
]

# A PHC PBKDF2 string as Ory Kratos writes it (standard base64, i= and l=).
salt = secrets.token_bytes(16)
key = hashlib.pbkdf2_hmac("sha256", PW.encode(), salt, 10000, 32)
b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
vectors.append(("pbkdf2", "PHC i=,l= (hashlib)", PW, f"$pbkdf2-sha256$i=10000,l=32${b64(salt)}${b64(key)}"))

with open("legacy_vectors.json", "w") as f:
    json.dump([{"format": fm, "tool": tool, "password": pw, "hash": h} for fm, tool, pw, h in vectors], f, indent=1, ensure_ascii=False)
    f.write("\n")
