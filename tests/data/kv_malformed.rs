// kv's malformed-input corpus: one list, read by the in-memory test
// (`malformed_input_corpus` in `src/service/kv/tests.rs`) and by the socket test
// (`tests/faults.rs`), both through `include!`. Every case gets exactly Redis's error reply and
// then the connection closes. The limits it assumes:
// `KvConfig { max_bulk: 1024, max_query: 4096, max_args: 64 }`.

#[allow(dead_code)]
fn kv_malformed_corpus() -> Vec<(Vec<u8>, String)> {
    let mbulk = "-ERR Protocol error: invalid multibulk length\r\n";
    let bulk = "-ERR Protocol error: invalid bulk length\r\n";
    let dollar = |c: char| format!("-ERR Protocol error: expected '$', got '{c}'\r\n");
    let quotes = "-ERR Protocol error: unbalanced quotes in request\r\n";
    let crlf = "-ERR Protocol error: bulk string not terminated by CRLF\r\n";
    let big_inline = vec![b'a'; 64 * 1024 + 1];
    let mut big_count = b"*".to_vec();
    big_count.extend(std::iter::repeat_n(b'1', 64 * 1024 + 1));
    let mut big_len = b"*1\r\n$".to_vec();
    big_len.extend(std::iter::repeat_n(b'1', 64 * 1024 + 1));
    let mut big_query = b"*5\r\n".to_vec();
    for _ in 0..4 {
        big_query.extend_from_slice(b"$1000\r\n");
        big_query.extend(std::iter::repeat_n(b'x', 1000));
        big_query.extend_from_slice(b"\r\n");
    }
    big_query.extend_from_slice(b"$1000\r\n");
    let cases: Vec<(&[u8], String)> = vec![
        (b"*x\r\n", mbulk.into()),
        (b"*\r\n", mbulk.into()),
        (b"* 1\r\n", mbulk.into()),
        (b"*1 \r\n", mbulk.into()),
        (b"*+1\r\n", mbulk.into()),
        (b"*01\r\n", mbulk.into()),
        (b"*1.5\r\n", mbulk.into()),
        (b"*0x10\r\n", mbulk.into()),
        (b"*--1\r\n", mbulk.into()),
        (b"*65\r\n", mbulk.into()),
        (b"*1073741825\r\n", mbulk.into()),
        (b"*99999999999999999999\r\n", mbulk.into()),
        (b"*-9999999999999999999999\r\n", mbulk.into()),
        (b"*1\rX", mbulk.into()),
        (&big_count, "-ERR Protocol error: too big mbulk count string\r\n".into()),
        (b"*1\r\n*1\r\n$4\r\nPING\r\n", dollar('*')),
        (b"*1\r\n*1\r\n*1\r\n*1\r\n", dollar('*')),
        (b"*2\r\n$3\r\nGET\r\n:1\r\n", dollar(':')),
        (b"*1\r\n+PING\r\n", dollar('+')),
        (b"*1\r\n-ERR\r\n", dollar('-')),
        (b"*1\r\nPING\r\n", dollar('P')),
        (b"*1\r\n\r\n", dollar(' ')),
        (b"*1\r\n\n", dollar(' ')),
        (b"*1\r\n \r\n", dollar(' ')),
        (b"*1\r\n%1\r\n", dollar('%')),
        (b"*1\r\n$\r\n", bulk.into()),
        (b"*1\r\n$x\r\n", bulk.into()),
        (b"*1\r\n$-1\r\n", bulk.into()),
        (b"*1\r\n$-2\r\n", bulk.into()),
        (b"*1\r\n$ 4\r\nPING\r\n", bulk.into()),
        (b"*1\r\n$4 \r\nPING\r\n", bulk.into()),
        (b"*1\r\n$+4\r\nPING\r\n", bulk.into()),
        (b"*1\r\n$04\r\nPING\r\n", bulk.into()),
        (b"*1\r\n$1025\r\n", bulk.into()),
        (b"*1\r\n$9223372036854775807\r\n", bulk.into()),
        (b"*1\r\n$99999999999999999999\r\n", bulk.into()),
        (b"*1\r\n$4\rPING\r\n", bulk.into()),
        (b"*1\r\n$4.0\r\nPING\r\n", bulk.into()),
        (&big_len, "-ERR Protocol error: too big bulk count string\r\n".into()),
        (b"*1\r\n$4\r\nPINGxx", crlf.into()),
        (b"*1\r\n$4\r\nPING\n\r", crlf.into()),
        (b"*1\r\n$3\r\nPING\r\n", crlf.into()),
        (b"*2\r\n$3\r\nGET\r\n$1\r\nkey\r\n", crlf.into()),
        (b"*1\r\n$0\r\nX\r\n", crlf.into()),
        (&big_query, "-ERR Protocol error: request exceeds the query buffer limit\r\n".into()),
        (b"GET \"k\r\n", quotes.into()),
        (b"GET 'k\r\n", quotes.into()),
        (b"SET k \"v\"x\r\n", quotes.into()),
        (b"SET k 'v'x\r\n", quotes.into()),
        (b"ECHO \"\\\r\n", quotes.into()),
        (b"\"\n", quotes.into()),
        (&big_inline, "-ERR Protocol error: too big inline request\r\n".into()),
    ];
    cases.into_iter().map(|(input, reply)| (input.to_vec(), reply)).collect()
}
