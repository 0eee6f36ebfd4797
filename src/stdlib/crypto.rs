//! `crypto` (SPEC 7.2): digests and HMACs as raw bytes (pair them with `hex` or
//! `base64`), OS randomness, and a constant-time comparison for secrets.

use hmac::{EagerHash, Hmac, KeyInit, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::binding::{self, Args, Error, Function, Module, Param, Type, Value};

/// The most `random_bytes` gives in one call: a bound on what one call allocates.
pub const MAX_RANDOM_BYTES: usize = 1 << 20;

pub fn hmac<D: EagerHash>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `n` bytes from the operating system's generator.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    // The kernel's generator does not fail once booted; if it ever did, lure
    // would rather stop than hand out predictable bytes.
    getrandom::fill(&mut bytes).expect("the operating system's random generator");
    bytes
}

fn digest_fn<D: Digest>(args: &Args) -> Result<Value, Error> {
    Ok(Value::Bytes(D::digest(args.data(1)?).to_vec()))
}

fn hmac_fn<D: EagerHash>(args: &Args) -> Result<Value, Error> {
    Ok(Value::Bytes(hmac::<D>(args.data(1)?, args.data(2)?)))
}

fn random_bytes_fn(args: &Args) -> Result<Value, Error> {
    let n = args.int(1)?;
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= MAX_RANDOM_BYTES)
        .ok_or_else(|| {
            Error::argument(1, format!("must be from 0 to {MAX_RANDOM_BYTES}, not {n}"))
        })?;
    Ok(Value::Bytes(random_bytes(n)))
}

fn equal_fn(args: &Args) -> Result<Value, Error> {
    let (a, b) = (args.data(1)?, args.data(2)?);
    // The time taken depends on the lengths only, never on where the bytes differ.
    Ok(Value::Bool(a.len() == b.len() && bool::from(a.ct_eq(b))))
}

const DATA: &[Param] = &[Param::new("data", Type::Data)];
const KEY_DATA: &[Param] = &[
    Param::new("key", Type::Data),
    Param::new("data", Type::Data),
];

static CRYPTO: Module = Module {
    name: "crypto",
    functions: &[
        Function {
            name: "sha256",
            params: DATA,
            returns: Type::Bytes,
            doc: "The SHA-256 digest of `data` (32 bytes).",
            call: digest_fn::<Sha256>,
            rhai_blob_twin: None,
        },
        Function {
            name: "sha1",
            params: DATA,
            returns: Type::Bytes,
            doc: "The SHA-1 digest of `data` (20 bytes): for protocols that need it, not for security.",
            call: digest_fn::<Sha1>,
            rhai_blob_twin: None,
        },
        Function {
            name: "md5",
            params: DATA,
            returns: Type::Bytes,
            doc: "The MD5 digest of `data` (16 bytes): for checksums (S3's Content-MD5), not for security.",
            call: digest_fn::<Md5>,
            rhai_blob_twin: None,
        },
        Function {
            name: "hmac_sha256",
            params: KEY_DATA,
            returns: Type::Bytes,
            doc: "The HMAC-SHA256 of `data` under `key` (32 bytes).",
            call: hmac_fn::<Sha256>,
            rhai_blob_twin: None,
        },
        Function {
            name: "hmac_sha1",
            params: KEY_DATA,
            returns: Type::Bytes,
            doc: "The HMAC-SHA1 of `data` under `key` (20 bytes).",
            call: hmac_fn::<Sha1>,
            rhai_blob_twin: None,
        },
        Function {
            name: "random_bytes",
            params: &[Param::new("n", Type::Int)],
            returns: Type::Bytes,
            doc: "`n` random bytes from the operating system (at most 1 MiB).",
            call: random_bytes_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "equal",
            params: &[Param::new("a", Type::Data), Param::new("b", Type::Data)],
            returns: Type::Bool,
            doc: "Whether `a` and `b` hold the same bytes, in a time that does not depend on where they differ (for signatures and tokens).",
            call: equal_fn,
            rhai_blob_twin: None,
        },
    ],
};

pub fn register_lua(lua: &mlua::Lua) -> mlua::Result<()> {
    binding::lua::register(lua, &CRYPTO)
}

pub fn register_rhai(
    engine: &mut rhai::Engine,
    definitions: Option<&mut binding::rhai::Definitions>,
) {
    binding::rhai::register(engine, &CRYPTO, definitions);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        super::super::hex::encode(bytes)
    }

    /// FIPS 180-2, appendix B (one and two blocks) and the empty message.
    #[test]
    fn sha256_matches_fips_180() {
        let cases = [
            (
                "abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                "",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        ];
        for (message, digest) in cases {
            assert_eq!(
                hex(&Sha256::digest(message.as_bytes())),
                digest,
                "{message:?}"
            );
        }
        let million_a = vec![b'a'; 1_000_000];
        assert_eq!(
            hex(&Sha256::digest(&million_a)),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    /// FIPS 180-2, appendix A.
    #[test]
    fn sha1_matches_fips_180() {
        assert_eq!(
            hex(&Sha1::digest(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&Sha1::digest(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    /// RFC 1321, appendix A.5.
    #[test]
    fn md5_matches_rfc_1321() {
        let suite = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (message, digest) in suite {
            assert_eq!(hex(&Md5::digest(message.as_bytes())), digest, "{message:?}");
        }
    }

    /// RFC 4231, test cases 1-4, 6 and 7 (5 truncates the output).
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let key_25: Vec<u8> = (1..=25).collect();
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                key_25,
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, mac) in cases {
            assert_eq!(hex(&hmac::<Sha256>(&key, &data)), mac);
        }
    }

    /// RFC 2202, test cases 1 and 2.
    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        assert_eq!(
            hex(&hmac::<Sha1>(&[0x0b; 20], b"Hi There")),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            hex(&hmac::<Sha1>(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn random_bytes_are_fresh_and_equal_compares_exactly() {
        let (a, b) = (random_bytes(32), random_bytes(32));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(random_bytes(0).is_empty());
        let args = |x: &[u8], y: &[u8]| {
            Args::new(
                vec![Value::Bytes(x.to_vec()), Value::Bytes(y.to_vec())],
                binding::Lang::Lua,
            )
        };
        assert_eq!(equal_fn(&args(b"secret", b"secret")), Ok(Value::Bool(true)));
        assert_eq!(
            equal_fn(&args(b"secret", b"secreT")),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            equal_fn(&args(b"secret", b"secrets")),
            Ok(Value::Bool(false))
        );
        assert_eq!(equal_fn(&args(b"", b"")), Ok(Value::Bool(true)));
    }
}
