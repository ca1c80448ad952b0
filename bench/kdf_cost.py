"""What one guess at the pre-shared key costs an attacker who holds a signed peer message.

    .venv/bin/python bench/kdf_cost.py [--rounds 20]

A captured request or answer lets anyone check a guessed pre-shared key offline: derive
the signing key from the guess and the pair's salt (both sites send the salt's key id,
and the salt itself crossed the wire once, at Establish), then compute one HMAC. This
times that derivation (security.keys.stretch: scrypt with the parameters in
security/keys.py) and, for comparison, the HKDF the signing key used before. No
network, no sites, no cache: each round derives afresh with a new salt.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import statistics
import time

from harness import machine  # first: it puts the project on sys.path

from security import keys


def timed(derive, rounds: int) -> list[float]:
    spent = []
    for _ in range(rounds):
        salt = bytes.fromhex(keys.new_salt())
        began = time.perf_counter()
        secret = derive(salt)
        hmac.new(secret, b"signature base", hashlib.sha256).digest()
        spent.append(time.perf_counter() - began)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    print(machine())
    guess = "a guessed pre-shared key"
    stretched = timed(lambda salt: keys.stretch.__wrapped__(guess, salt, "bench"), rounds)
    hkdf = timed(lambda salt: keys.derive(guess + salt.hex(), "bench"), rounds * 50)
    per_scrypt, per_hkdf = statistics.median(stretched), statistics.median(hkdf)
    print(
        f"scrypt n=2**{keys.SCRYPT_N.bit_length() - 1} r={keys.SCRYPT_R} p={keys.SCRYPT_P} "
        f"({128 * keys.SCRYPT_N * keys.SCRYPT_R // 2**20} MiB): median {per_scrypt * 1000:.1f} ms "
        f"per guess on one core ({1 / per_scrypt:.0f} guesses/s)"
    )
    print(
        f"HKDF-SHA256 (before): median {per_hkdf * 1e6:.1f} us per guess "
        f"({1 / per_hkdf:.0f} guesses/s); scrypt costs {per_scrypt / per_hkdf:.0f}x more"
    )
    print(machine())


if __name__ == "__main__":
    main()
