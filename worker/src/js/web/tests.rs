//! Unit tests of the `data` preset's Web APIs, with the published test vectors.

use crate::js::execute;
use isolate_shared::message::{CodeForm, ExecuteJob, JobError, JsLimits, Language, Preset};

/// Helpers every snippet may use: hex of any BufferSource, bytes of a hex string.
const HELPERS: &str = "const hex = (b) => Buffer.from(b instanceof ArrayBuffer ? new Uint8Array(b) : b).toString('hex');\n\
                       const bytes = (h) => Buffer.from(h, 'hex');\n";

fn job(code: &str) -> ExecuteJob {
    ExecuteJob {
        code: format!("{HELPERS}{code}"),
        preset: Preset::Data,
        env_json: None,
        timeout_ms: 5000,
        limits: JsLimits::default(),
        language: Language::JavaScript,
        form: CodeForm::Auto,
        data_json: None,
    }
}

fn ok(code: &str) -> String {
    match execute(&job(code)).result {
        Ok(json) => json,
        Err(e) => panic!("{code:?} failed: {e:?}"),
    }
}

fn err(code: &str) -> JobError {
    match execute(&job(code)).result {
        Ok(json) => panic!("{code:?} succeeded with {json}"),
        Err(e) => e,
    }
}

/// Asserts that `code` (JS) evaluates to the JSON `expected`.
#[track_caller]
fn check(code: &str, expected: &str) {
    assert_eq!(ok(code), expected, "{code}");
}

#[test]
fn sha_digests_fips_180() {
    let cases = [
        ("abc", ["a9993e364706816aba3e25717850c26c9cd0d89d",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"]),
        ("'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'", ["84983e441c3bd26ebaae4aa1f95129e5e54670f1",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            "3391fdddfc8dc7393707a65b1b4709397cf8b1d162af05abfe8f450de5f36bc6b0455a8520bc4e6f5fe95b1fe3c8452b",
            "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c33596fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445"]),
        ("'a'.repeat(1000000)", ["34aa973cd4c4daa4f61eeb2bdbad27316534016f",
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
            "9d0e1809716474cb086e834e310a4a1ced149e9c00f248527972cec5704c2a5b07b8b3dc38ecc4ebae97ddd87f3d8985",
            "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b"]),
    ];
    for (input, digests) in cases {
        let input = if input == "abc" { "'abc'" } else { input };
        let code = format!(
            "const d = new TextEncoder().encode({input});\n\
             const out = [];\n\
             for (const a of ['SHA-1', 'SHA-256', {{name: 'sha-384'}}, 'SHA-512']) out.push(hex(await crypto.subtle.digest(a, d)));\n\
             out"
        );
        let expected = format!("[\"{}\"]", digests.join("\",\""));
        check(&code, &expected);
    }
    // Every BufferSource is accepted; the result is an ArrayBuffer.
    check(
        "const d = await crypto.subtle.digest('SHA-256', new DataView(new Uint8Array([97, 98, 99]).buffer));\n\
         [d instanceof ArrayBuffer, d.byteLength, hex(d).slice(0, 8)]",
        r##"[true,32,"ba7816bf"]"##,
    );
}

#[test]
fn hmac_rfc_4231() {
    // (key, data, [SHA-256, SHA-384, SHA-512]) for test cases 1-4, 6 and 7.
    let cases = [
        ("bytes('0b'.repeat(20))", "Buffer.from('Hi There')", ["b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"]),
        ("Buffer.from('Jefe')", "Buffer.from('what do ya want for nothing?')", ["5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"]),
        ("bytes('aa'.repeat(20))", "bytes('dd'.repeat(50))", ["773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
            "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"]),
        ("bytes('0102030405060708090a0b0c0d0e0f10111213141516171819')", "bytes('cd'.repeat(50))", ["82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
            "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"]),
        ("bytes('aa'.repeat(131))", "Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First')", ["60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"]),
        ("bytes('aa'.repeat(131))", "Buffer.from('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.')", ["9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
            "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"]),
    ];
    for (key, data, macs) in cases {
        let code = format!(
            "const out = [];\n\
             for (const hash of ['SHA-256', 'SHA-384', 'SHA-512']) {{\n\
               const k = await crypto.subtle.importKey('raw', {key}, {{name: 'HMAC', hash}}, false, ['sign', 'verify']);\n\
               const sig = await crypto.subtle.sign('HMAC', k, {data});\n\
               if (!await crypto.subtle.verify('HMAC', k, sig, {data})) throw new Error('verify failed');\n\
               const bad = new Uint8Array(sig).slice(); bad[0] ^= 1;\n\
               if (await crypto.subtle.verify('HMAC', k, bad, {data})) throw new Error('verify accepted a bad signature');\n\
               out.push(hex(sig));\n\
             }}\n\
             out"
        );
        check(&code, &format!("[\"{}\"]", macs.join("\",\"")));
    }
}

#[test]
fn crypto_keys_and_usages() {
    check(
        "const k = await crypto.subtle.importKey('raw', new Uint8Array(32), {name: 'HMAC', hash: 'SHA-256'}, true, ['sign']);\n\
         [k instanceof CryptoKey, k.type, k.extractable, k.algorithm, k.usages, Object.isFrozen(k.usages),\n\
          hex(await crypto.subtle.exportKey('raw', k)).length]",
        r##"[true,"secret",true,{"name":"HMAC","length":256,"hash":{"name":"SHA-256"}},["sign"],true,64]"##,
    );
    // Errors are rejected promises with DOMException names.
    let cases = [
        ("crypto.subtle.digest('MD5', new Uint8Array(1))", "NotSupportedError"),
        ("crypto.subtle.importKey('jwk', {}, 'AES-GCM', false, ['encrypt'])", "NotSupportedError"),
        ("crypto.subtle.importKey('raw', new Uint8Array(16), 'AES-GCM', false, ['sign'])", "SyntaxError"),
        ("crypto.subtle.importKey('raw', new Uint8Array(16), 'AES-GCM', false, [])", "SyntaxError"),
        ("crypto.subtle.importKey('raw', new Uint8Array(15), 'AES-GCM', false, ['encrypt'])", "DataError"),
        ("crypto.subtle.importKey('raw', new Uint8Array(8), 'PBKDF2', true, ['deriveBits'])", "SyntaxError"),
        ("crypto.subtle.importKey('raw', new Uint8Array(8), {name: 'HMAC', hash: 'SHA-256'}, false, ['verify']).then((k) => crypto.subtle.sign('HMAC', k, new Uint8Array(1)))", "InvalidAccessError"),
        ("crypto.subtle.importKey('raw', new Uint8Array(8), {name: 'HMAC', hash: 'SHA-256'}, false, ['sign']).then((k) => crypto.subtle.exportKey('raw', k))", "InvalidAccessError"),
        ("crypto.subtle.importKey('raw', new Uint8Array(16), 'AES-GCM', false, ['encrypt']).then((k) => crypto.subtle.sign('HMAC', k, new Uint8Array(1)))", "InvalidAccessError"),
        ("crypto.subtle.importKey('raw', new Uint8Array(16), 'AES-GCM', false, ['decrypt']).then((k) => crypto.subtle.decrypt({name: 'AES-GCM', iv: new Uint8Array(12)}, k, new Uint8Array(20)))", "OperationError"),
    ];
    for (code, name) in cases {
        let code = format!(
            "try {{ await {code}; 'resolved' }} catch (e) {{ [e instanceof DOMException, e instanceof Error, e.name] }}"
        );
        check(&code, &format!("[true,true,\"{name}\"]"));
    }
    check(
        "[new DOMException('m', 'DataCloneError').code, new DOMException('x').name, String(new DOMException('boom', 'OperationError'))]",
        r##"[25,"Error","OperationError: boom"]"##,
    );
    let e = err("new CryptoKey()");
    assert_eq!(e.name, "TypeError");
    check(
        "const k = await crypto.subtle.generateKey({name: 'HMAC', hash: 'SHA-512'}, true, ['sign', 'verify']);\n\
         const g = await crypto.subtle.generateKey({name: 'AES-GCM', length: 256}, true, ['encrypt']);\n\
         [k.algorithm.length, (await crypto.subtle.exportKey('raw', k)).byteLength, g.algorithm, (await crypto.subtle.exportKey('raw', g)).byteLength]",
        r##"[1024,128,{"name":"AES-GCM","length":256},32]"##,
    );
}

#[test]
fn aes_gcm_spec_test_cases() {
    let k = "feffe9928665731c6d6a8f9467308308";
    let iv = "cafebabefacedbaddecaf888";
    let p = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
    let c = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985";
    // (key, iv, plaintext, aad, ciphertext || tag): test cases 2, 3, 4 and 14 (256-bit key).
    let cases = [
        (
            "00".repeat(16),
            "00".repeat(12),
            "00".repeat(16),
            String::new(),
            "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf".to_string(),
        ),
        (
            k.into(),
            iv.into(),
            p.into(),
            String::new(),
            format!("{c}4d5c2af327cd64a62cf35abd2ba6fab4"),
        ),
        (
            k.into(),
            iv.into(),
            p[..120].into(),
            "feedfacedeadbeeffeedfacedeadbeefabaddad2".into(),
            format!("{}5bc94fbc3221a5db94fae95ae7121a47", &c[..120]),
        ),
        (
            "00".repeat(32),
            "00".repeat(12),
            "00".repeat(16),
            String::new(),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919".to_string(),
        ),
    ];
    for (key, iv, plain, aad, sealed) in cases {
        let aad = if aad.is_empty() {
            "undefined".into()
        } else {
            format!("bytes('{aad}')")
        };
        let code = format!(
            "const k = await crypto.subtle.importKey('raw', bytes('{key}'), 'AES-GCM', false, ['encrypt', 'decrypt']);\n\
             const alg = {{name: 'AES-GCM', iv: bytes('{iv}'), additionalData: {aad}}};\n\
             const sealed = await crypto.subtle.encrypt(alg, k, bytes('{plain}'));\n\
             const opened = await crypto.subtle.decrypt(alg, k, sealed);\n\
             const tampered = new Uint8Array(sealed).slice(); tampered[tampered.length - 1] ^= 1;\n\
             let rejected = null;\n\
             try {{ await crypto.subtle.decrypt(alg, k, tampered); }} catch (e) {{ rejected = e.name; }}\n\
             [hex(sealed), hex(opened), rejected]"
        );
        check(
            &code,
            &format!("[\"{sealed}\",\"{plain}\",\"OperationError\"]"),
        );
    }
    // A shorter tag is the prefix of the full one.
    check(
        "const k = await crypto.subtle.importKey('raw', new Uint8Array(16), 'AES-GCM', false, ['encrypt', 'decrypt']);\n\
         const alg = {name: 'AES-GCM', iv: new Uint8Array(12), tagLength: 96};\n\
         const s = await crypto.subtle.encrypt(alg, k, new Uint8Array(16));\n\
         [hex(s), hex(await crypto.subtle.decrypt(alg, k, s))]",
        r##"["0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b2","00000000000000000000000000000000"]"##,
    );
}

#[test]
fn pbkdf2_rfc_6070_and_sha256() {
    let cases = [
        (
            "password",
            "salt",
            1,
            20,
            "SHA-1",
            "0c60c80f961f0e71f3a9b524af6012062fe037a6",
        ),
        (
            "password",
            "salt",
            2,
            20,
            "SHA-1",
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957",
        ),
        (
            "password",
            "salt",
            4096,
            20,
            "SHA-1",
            "4b007901b765489abead49d926f721d065a429c1",
        ),
        (
            "passwordPASSWORDpassword",
            "saltSALTsaltSALTsaltSALTsaltSALTsalt",
            4096,
            25,
            "SHA-1",
            "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
        ),
        (
            "pass\\0word",
            "sa\\0lt",
            4096,
            16,
            "SHA-1",
            "56fa6aa75548099dcc37d7f03425e0c3",
        ),
        (
            "password",
            "salt",
            4096,
            32,
            "SHA-256",
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a",
        ),
    ];
    for (password, salt, iterations, len, hash, expected) in cases {
        let code = format!(
            "const k = await crypto.subtle.importKey('raw', new TextEncoder().encode('{password}'), 'PBKDF2', false, ['deriveBits']);\n\
             hex(await crypto.subtle.deriveBits({{name: 'PBKDF2', hash: '{hash}', salt: new TextEncoder().encode('{salt}'), iterations: {iterations}}}, k, {bits}))",
            bits = len * 8
        );
        check(&code, &format!("\"{expected}\""));
    }
    // deriveKey to AES-GCM: the key's bytes are the derived bits.
    check(
        "const k = await crypto.subtle.importKey('raw', Buffer.from('password'), 'PBKDF2', false, ['deriveKey']);\n\
         const alg = {name: 'PBKDF2', hash: 'SHA-256', salt: Buffer.from('salt'), iterations: 4096};\n\
         const aes = await crypto.subtle.deriveKey(alg, k, {name: 'AES-GCM', length: 128}, true, ['encrypt']);\n\
         let e = null; try { await crypto.subtle.deriveBits(alg, k, 128); } catch (x) { e = x.name; }\n\
         [aes.algorithm, hex(await crypto.subtle.exportKey('raw', aes)), e]",
        r##"[{"name":"AES-GCM","length":128},"c5e478d59288c841aa530db6845c4c8d","InvalidAccessError"]"##,
    );
}

#[test]
fn hkdf_rfc_5869() {
    let hex_range =
        |from: u32, to: u32| (from..=to).map(|b| format!("{b:02x}")).collect::<String>();
    let cases = [
        ("0b".repeat(22), hex_range(0, 0x0c), hex_range(0xf0, 0xf9), 42,
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
        (hex_range(0, 0x4f), hex_range(0x60, 0xaf), hex_range(0xb0, 0xff), 82,
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"),
        ("0b".repeat(22), String::new(), String::new(), 42,
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
    ];
    for (ikm, salt, info, len, expected) in cases {
        let code = format!(
            "const k = await crypto.subtle.importKey('raw', bytes('{ikm}'), 'HKDF', false, ['deriveBits', 'deriveKey']);\n\
             const alg = {{name: 'HKDF', hash: 'SHA-256', salt: bytes('{salt}'), info: bytes('{info}')}};\n\
             hex(await crypto.subtle.deriveBits(alg, k, {bits}))",
            bits = len * 8
        );
        check(&code, &format!("\"{expected}\""));
    }
    check(
        "const k = await crypto.subtle.importKey('raw', new Uint8Array(8), 'HKDF', false, ['deriveKey']);\n\
         const h = await crypto.subtle.deriveKey({name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(), info: new Uint8Array()}, k, {name: 'HMAC', hash: 'SHA-256'}, false, ['sign']);\n\
         let e = null; try { await crypto.subtle.deriveBits({name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(), info: new Uint8Array()}, k, 255 * 32 * 8 + 8); } catch (x) { e = x.name; }\n\
         [h.algorithm, e]",
        r##"[{"name":"HMAC","length":512,"hash":{"name":"SHA-256"}},"InvalidAccessError"]"##,
    );
}

#[test]
fn base64_and_hex_rfc_4648() {
    let cases = [
        ("", "", ""),
        ("f", "Zg==", "66"),
        ("fo", "Zm8=", "666f"),
        ("foo", "Zm9v", "666f6f"),
        ("foob", "Zm9vYg==", "666f6f62"),
        ("fooba", "Zm9vYmE=", "666f6f6261"),
        ("foobar", "Zm9vYmFy", "666f6f626172"),
    ];
    for (plain, b64, hx) in cases {
        let url = b64.trim_end_matches('=');
        check(
            &format!(
                "const b = Buffer.from('{plain}');\n\
                 [b.toString('base64'), b.toString('base64url'), b.toString('hex'), btoa('{plain}'), atob('{b64}'),\n\
                  Buffer.from('{b64}', 'base64').toString(), Buffer.from('{url}', 'base64url').toString(),\n\
                  Buffer.from('{hx}'.toUpperCase(), 'hex').toString()]"
            ),
            &format!("[\"{b64}\",\"{url}\",\"{hx}\",\"{b64}\",\"{plain}\",\"{plain}\",\"{plain}\",\"{plain}\"]"),
        );
    }
    // base64url uses - and _; the lenient decoder accepts both alphabets.
    check(
        "const b = Buffer.from([0xfb, 0xff, 0xbf]);\n[b.toString('base64'), b.toString('base64url'), hex(Buffer.from('-_-_', 'base64')), hex(Buffer.from('+/+/', 'base64url'))]",
        r##"["+/+/","-_-_","fbffbf","fbffbf"]"##,
    );
}

#[test]
fn atob_btoa_errors() {
    check("[atob(' Zm9v\\nYmFy '), atob('Zm9vYg'), btoa('\\u00ff\\u0000'), atob('/w==').charCodeAt(0)]", r##"["foobar","foob","/wA=",255]"##);
    for code in [
        "btoa('é€')",
        "btoa('\\ud800')",
        "atob('Zm9v\\ud800')",
        "atob('Zm9vY')",
        "atob('Zm9v!')",
        "atob('Zg=a')",
        "atob('-_')",
    ] {
        let e = err(code);
        assert_eq!(e.name, "InvalidCharacterError", "{code}: {e:?}");
    }
    check(
        "try { atob('*') } catch (e) { [e instanceof DOMException, e.code, e.name] }",
        r##"[true,5,"InvalidCharacterError"]"##,
    );
    assert_eq!(err("atob()").name, "TypeError");
}

#[test]
fn buffer_api() {
    check(
        "const b = Buffer.from('héllo wörld');\n\
         [Buffer.isBuffer(b), b instanceof Uint8Array, b.length, Buffer.byteLength('héllo'), b.toString('utf8', 0, 6),\n\
          b.subarray(1, 3) instanceof Buffer, b.slice(0, 1).toString(), b.indexOf('wö'), b.includes('xyz'), b.indexOf(0x6c), b.indexOf('l', 5)]",
        r##"[true,true,13,6,"héllo",true,"h",7,false,3,11]"##,
    );
    check(
        "const a = Buffer.alloc(4, 'ab'), z = Buffer.alloc(3), u = Buffer.allocUnsafe(2);\n\
         [a.toString(), hex(z), u.length, Buffer.concat([a, Buffer.from([1]), new Uint8Array([2])]).length,\n\
          hex(Buffer.concat([Buffer.from('abc'), Buffer.from('def')], 4)), Buffer.from('abc').equals(Buffer.from('abc')),\n\
          Buffer.compare(Buffer.from('a'), Buffer.from('b')), Buffer.from('b').compare(Buffer.from('a')), Buffer.from('abc').toJSON()]",
        r##"["abab","000000",2,6,"61626364",true,-1,1,{"type":"Buffer","data":[97,98,99]}]"##,
    );
    check(
        "const b = Buffer.alloc(8);\n\
         const w = [b.write('hi'), b.write('zz', 6), b.write('abcdef', 4, 2, 'latin1')];\n\
         [w, b.toString('latin1'), Buffer.from('caf\\u00e9', 'latin1').length, Buffer.from([0xe9]).toString('latin1'), Buffer.from([0xe9]).toString('binary'),\n\
          Buffer.from('hi', 'utf16le').toString('hex'), Buffer.from('6869', 'hex').toString('ascii'), Buffer.from(JSON.parse(JSON.stringify(Buffer.from('x')))).toString()]",
        r##"[[2,2,2],"hi\u0000\u0000abzz",4,"é","é","68006900","hi","x"]"##,
    );
    check(
        "const b = Buffer.alloc(16);\n\
         const ends = [b.writeUInt8(0xfe, 0), b.writeUInt16LE(0x1234, 1), b.writeUInt16BE(0x1234, 3), b.writeUInt32LE(0xdeadbeef, 5), b.writeInt32BE(-2, 9), b.writeInt8(-1, 13)];\n\
         const c = Buffer.alloc(8); c.writeBigUInt64LE(2n ** 64n - 2n); const d = Buffer.alloc(8); d.writeDoubleBE(1.5);\n\
         [ends, hex(b), b.readUInt8(0), b.readUInt16LE(1), b.readUInt16BE(3), b.readUInt32LE(5).toString(16), b.readInt32BE(9), b.readInt8(13),\n\
          b.readUint16BE(1), b.readUInt32BE(5).toString(16), b.readInt16LE(13), String(c.readBigUInt64LE()), String(c.readBigInt64LE()), d.readDoubleBE(), hex(d)]",
        r##"[[1,3,5,9,13,14],"fe34121234efbeaddefffffffeff0000",254,4660,4660,"deadbeef",-2,-1,13330,"efbeadde",255,"18446744073709551614","-2",1.5,"3ff8000000000000"]"##,
    );
    for code in [
        "Buffer.alloc(2).readUInt32LE(0)",
        "Buffer.alloc(4).writeUInt8(256, 0)",
        "Buffer.alloc(4).readUInt8(1.5)",
        "Buffer.alloc(-1)",
    ] {
        assert_eq!(err(code).name, "RangeError", "{code}");
    }
    for code in [
        "Buffer.from(5)",
        "Buffer.from('x', 'nope')",
        "Buffer.alloc(8).writeBigInt64LE(1)",
    ] {
        assert_eq!(err(code).name, "TypeError", "{code}");
    }
    // A Buffer result serialises as Node's JSON form.
    check(
        "Buffer.from('ok')",
        r##"{"type":"Buffer","data":[111,107]}"##,
    );
}

#[test]
fn text_encoder_decoder() {
    check(
        "const e = new TextEncoder(), d = new TextDecoder();\n\
         const dest = new Uint8Array(4);\n\
         [e.encoding, Array.from(e.encode('€')), Array.from(e.encode('\\ud800')), e.encodeInto('a€b', dest), Array.from(dest),\n\
          d.encoding, d.fatal, d.ignoreBOM, d.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0x69])), d.decode(new Uint8Array([0x68, 0xff, 0x69])),\n\
          new TextDecoder('utf-8', {ignoreBOM: true}).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x68])).length, d.decode(), d.decode(e.encode('ok').buffer)]",
        r##"[["utf-8"],[226,130,172],[239,191,189],{"read":2,"written":4},[97,226,130,172],"utf-8",false,false,"hi","h�i",2,"","ok"]"##
            .replace(r##"[["utf-8"]"##, r##"["utf-8""##)
            .as_str(),
    );
    // Streaming: a character split across chunks, and a BOM split across chunks.
    check(
        "const d = new TextDecoder();\n\
         const euro = [0xe2, 0x82, 0xac];\n\
         const parts = [d.decode(new Uint8Array([0xef, 0xbb]), {stream: true}), d.decode(new Uint8Array([0xbf, 0x61, euro[0]]), {stream: true}),\n\
                        d.decode(new Uint8Array([euro[1]]), {stream: true}), d.decode(new Uint8Array([euro[2], 0x62]), {stream: true}), d.decode()];\n\
         const cut = new TextDecoder().decode(new Uint8Array([0x61, 0xe2, 0x82]));\n\
         const f = new TextDecoder('utf-8', {fatal: true}); f.decode(new Uint8Array([0xe2]), {stream: true});\n\
         let e = null; try { f.decode(); } catch (x) { e = x.name; }\n\
         [parts, cut, e, new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf])).length]",
        r##"[["","a","","€b",""],"a�","TypeError",1]"##,
    );
    let e = err("new TextDecoder('utf-8', {fatal: true}).decode(new Uint8Array([0xc3, 0x28]))");
    assert_eq!(e.name, "TypeError");
    assert!(e.message.contains("not valid utf-8"), "{e:?}");
    assert_eq!(err("new TextDecoder('latin2')").name, "RangeError");
    check(
        "new TextDecoder('utf-8', {fatal: true}).decode(new Uint8Array([0xe2, 0x82, 0xac]))",
        "\"€\"",
    );
}

#[test]
fn url_and_search_params() {
    check(
        "const u = new URL('https://user:pw@EXAMPLE.com:8080/a/../b/c?x=1&y=%20z#frag');\n\
         [u.href, u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname, u.search, u.hash, u.origin]",
        r##"["https://user:pw@example.com:8080/b/c?x=1&y=%20z#frag","https:","user","pw","example.com:8080","example.com","8080","/b/c","?x=1&y=%20z","#frag","https://example.com:8080"]"##,
    );
    check(
        "const u = new URL('../d?q', 'http://h.test/a/b/c');\n\
         const v = new URL('https://h.test:443/p');\n\
         u.searchParams.append('k', 'a b&c'); v.pathname = '/x y'; v.hash = 'h'; v.port = '8443';\n\
         [u.href, v.href, v.port, URL.canParse('nope'), URL.canParse('/p', 'https://x'), URL.parse('::'), new URL('http://xn--nxasmq6b.com').hostname,\n\
          new URL('http://münchen.de/').hostname, JSON.stringify({u: new URL('http://a.b')}), String(new URL('file:///tmp/x'))]",
        r##"["http://h.test/a/d?q=&k=a+b%26c","https://h.test:8443/x%20y#h","8443",false,true,null,"xn--nxasmq6b.com","xn--mnchen-3ya.de","{\"u\":\"http://a.b/\"}","file:///tmp/x"]"##,
    );
    let e = err("new URL('not a url')");
    assert_eq!(e.name, "TypeError");
    assert!(e.message.contains("Invalid URL"), "{e:?}");
    check(
        "const p = new URLSearchParams('?a=1&b=2&a=3&c=%E2%82%AC+x');\n\
         const q = new URLSearchParams({z: '1', y: '2'}), r = new URLSearchParams([['k', 'v'], ['k', 'w']]);\n\
         p.set('b', 'B'); p.delete('zz'); q.sort();\n\
         [p.get('a'), p.getAll('a'), p.get('c'), p.has('b'), p.has('a', '3'), p.get('none'), p.size, p.toString(), q.toString(), [...r.keys()], [...r], r.toString()]",
        r##"["1",["1","3"],"€ x",true,true,null,4,"a=1&b=B&a=3&c=%E2%82%AC+x","y=2&z=1",["k","k"],[["k","v"],["k","w"]],"k=v&k=w"]"##,
    );
    check(
        "const u = new URL('http://a.test/?x=1');\n\
         const p = u.searchParams; u.search = '?y=2';\n\
         const seen = p.get('y'); p.delete('y');\n\
         [seen, u.href, p.size]",
        r##"["2","http://a.test/",0]"##,
    );
    assert_eq!(err("new URLSearchParams([['a']])").name, "TypeError");
}

#[test]
fn structured_clone() {
    check(
        "const o = {n: 1, s: 'x', d: new Date(5), r: /a+/gi, m: new Map([[{k: 1}, new Set([1, 2])]]), arr: [1, , 3], big: 10n,\n\
               u8: new Uint8Array([1, 2, 3]).subarray(1), dv: new DataView(new ArrayBuffer(4), 1, 2), e: new RangeError('bad'), boxed: Object('str')};\n\
         o.self = o; o.arr.push(o.m);\n\
         const c = structuredClone(o);\n\
         [c !== o, c.self === c, c.arr[3] === c.m, c.d instanceof Date && c.d.getTime(), c.r instanceof RegExp && c.r.flags + c.r.source,\n\
          [...c.m.keys()][0].k, [...[...c.m.values()][0]], c.m !== o.m, c.arr.length, 1 in c.arr, typeof c.big, Array.from(c.u8), c.u8.byteOffset,\n\
          c.u8.buffer !== o.u8.buffer, c.dv.byteOffset + ':' + c.dv.byteLength, c.e instanceof RangeError && c.e.message, typeof c.boxed, String(c.boxed)]",
        r##"[true,true,true,5,"gia+",1,[1,2],true,4,false,"bigint",[2,3],1,true,"1:2","bad","object","str"]"##,
    );
    check(
        "class P { constructor() { this.a = 1 } get g() { return 2 } }\n\
         const c = structuredClone(new P());\n\
         [Object.getPrototypeOf(c) === Object.prototype, c.a, c.g, structuredClone(null), structuredClone(undefined) === undefined]",
        "[true,1,null,null,true]",
    );
    for code in [
        "structuredClone(() => 1)",
        "structuredClone({f: function named() {}})",
        "structuredClone(Symbol('s'))",
        "structuredClone(new WeakMap())",
        "structuredClone(Promise.resolve())",
    ] {
        let e = err(code);
        assert_eq!(e.name, "DataCloneError", "{code}: {e:?}");
    }
    check(
        "try { structuredClone(Symbol()) } catch (e) { [e instanceof DOMException, e.code] }",
        "[true,25]",
    );
}

#[test]
fn random_values_and_uuid() {
    check(
        "const a = crypto.getRandomValues(new Uint8Array(65536)), b = new Uint32Array(8);\n\
         const same = crypto.getRandomValues(b) === b;\n\
         const seen = new Set(a); const big = crypto.getRandomValues(new BigUint64Array(2));\n\
         [same, seen.size > 200, b.some((x) => x !== 0), typeof big[0]]",
        r##"[true,true,true,"bigint"]"##,
    );
    for (code, name) in [
        (
            "crypto.getRandomValues(new Uint8Array(65537))",
            "QuotaExceededError",
        ),
        (
            "crypto.getRandomValues(new Float64Array(2))",
            "TypeMismatchError",
        ),
        (
            "crypto.getRandomValues(new DataView(new ArrayBuffer(2)))",
            "TypeMismatchError",
        ),
        ("crypto.getRandomValues([1, 2])", "TypeMismatchError"),
    ] {
        assert_eq!(err(code).name, name, "{code}");
    }
    check(
        "const ids = Array.from({length: 100}, () => crypto.randomUUID());\n\
         const re = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;\n\
         [ids.every((id) => re.test(id)), new Set(ids).size]",
        "[true,100]",
    );
}

#[test]
fn classes_are_frozen_and_globals_hidden() {
    check(
        "const objs = [Buffer, Buffer.prototype, TextEncoder.prototype, TextDecoder.prototype, URL, URL.prototype, URLSearchParams.prototype,\n\
                      crypto, crypto.subtle, Object.getPrototypeOf(crypto.subtle), CryptoKey.prototype, DOMException.prototype];\n\
         const frozen = objs.every(Object.isFrozen);\n\
         'use strict';\n\
         let threw = 0;\n\
         for (const f of [() => { 'use strict'; Buffer.prototype.toString = () => 'x' }, () => { 'use strict'; crypto.subtle.digest = null },\n\
                          () => { 'use strict'; URL.prototype.toString = null }, () => { 'use strict'; Buffer.from = null }]) {\n\
           try { f() } catch (e) { if (e instanceof TypeError) threw++ }\n\
         }\n\
         [frozen, threw, Buffer.from('a').toString(), Object.keys(globalThis).includes('Buffer')]",
        "[true,4,\"a\",false]",
    );
    // Reassigning the globals the APIs use changes nothing for them.
    check(
        "Uint8Array = null; Object = null; Map = null; TypeError = null; DataView = null;\n\
         [Buffer.from('hi').toString('hex'), structuredClone(new globalThis.Set([1])).size, new URL('http://a/b').pathname]",
        r##"["6869",1,"/b"]"##,
    );
    // The data APIs do not leak into the other presets.
    for preset in [Preset::Minimal, Preset::Compute] {
        let j = ExecuteJob {
            code: "[typeof Buffer, typeof crypto, typeof URL, typeof TextEncoder, typeof atob, typeof structuredClone]".into(),
            preset,
            env_json: None,
            timeout_ms: 1000,
            limits: JsLimits::default(),
            language: Language::JavaScript,
            form: CodeForm::Auto,
            data_json: None,
        };
        let out = execute(&j).result.expect("runs");
        assert_eq!(
            out,
            r##"["undefined","undefined","undefined","undefined","undefined","undefined"]"##
        );
    }
}

/// The groups of Web APIs are read into a context on first use; until then each global is an
/// accessor, and afterwards it is the plain, frozen value that an eager install would give.
#[test]
fn web_apis_load_on_first_use_and_end_as_plain_frozen_globals() {
    let kind = "(name) => { const d = Object.getOwnPropertyDescriptor(globalThis, name); \
                return d === undefined ? 'absent' : 'get' in d ? 'accessor' : \
                [d.writable, d.enumerable, d.configurable].join() }";
    // Nothing is loaded before a global is read; reading one loads its whole group only.
    check(
        &format!(
            "const kind = {kind};\n\
             const before = ['TextEncoder', 'URL', 'crypto'].map(kind);\n\
             const t = typeof TextDecoder;\n\
             [before, t, ['TextEncoder', 'TextDecoder', 'btoa', 'atob', 'URL', 'Buffer', 'crypto'].map(kind)]"
        ),
        r#"[["accessor","accessor","accessor"],"function",["true,false,true","true,false,true","true,false,true","true,false,true","accessor","accessor","accessor"]]"#,
    );
    // What it exposes is frozen, as are the prototypes; DOMException is there from the start.
    check(
        "[Object.isFrozen(URL), Object.isFrozen(URL.prototype), Object.isFrozen(crypto), \
          Object.isFrozen(Buffer.prototype), typeof DOMException, 'structuredClone' in globalThis]",
        "[true,true,true,true,\"function\",true]",
    );
    // A global assigned or deleted before its group loads stays as the code left it.
    check(
        "TextEncoder = 7; delete globalThis.atob;\n\
         const d = new TextDecoder().decode(new Uint8Array([104, 105]));\n\
         [TextEncoder, typeof atob, d, btoa('hi')]",
        r#"[7,"undefined","hi","aGk="]"#,
    );
    // A global object frozen before a group loads leaves the accessors in place, still working.
    check(
        "Object.freeze(globalThis); TextDecoder = 1;\n\
         [new TextEncoder().encode('ab').length, typeof TextDecoder, new URL('https://a.example/').host]",
        r#"[2,"function","a.example"]"#,
    );
    // The groups use the built-ins captured before the code ran, not what it put in their place.
    check(
        "Uint8Array = null; Object = null; Reflect = null; Map = undefined;\n\
         [new TextEncoder().encode('ab').length, new URL('https://a.example/x?y=1').searchParams.get('y'),\n\
          structuredClone({a: [1]}).a[0], crypto.randomUUID().length]",
        r#"[2,"1",1,36]"#,
    );
}
