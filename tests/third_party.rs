//! Clients nobody here wrote, against the real binary. Each test needs a program from the
//! system; `.ci/run` installs them, and on a machine without one the test says so and passes
//! without checking (it cannot check what is not there).

mod common;

use std::process::Command;

use common::Binary;

#[test]
fn netcat_talks_to_tcp_and_udp_echo() {
    if !common::have("nc") {
        return;
    }
    let server = Binary::start(&["serve", "--echo", "127.0.0.1:0", "--udp-echo", "127.0.0.1:0"]);
    let tcp = server.addr("echo:tcp");
    // -N: shut down the sending side at end of input, then print until the server closes.
    let out = common::output_with_input(
        Command::new("nc").args(["-N", "127.0.0.1", &tcp.port().to_string()]),
        b"Hello, Server!\nsecond line\n",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, Server!\nsecond line\n");

    let udp = server.addr("udp-echo:udp");
    let out = common::output_with_input(
        Command::new("nc").args(["-u", "-w", "1", "127.0.0.1", &udp.port().to_string()]),
        b"datagram\n",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "datagram\n");
}

#[test]
fn netcat_joins_the_chat_room() {
    if !common::have("nc") {
        return;
    }
    let server = Binary::start(&["serve", "--chat", "127.0.0.1:0"]);
    let chat = server.addr("chat:tcp");
    let out = String::from_utf8(
        common::output_with_input(
            Command::new("nc").args(["-N", "127.0.0.1", &chat.port().to_string()]),
            b"/nick netcat\n/who\n/quit\n",
        )
        .stdout,
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("*** welcome, you are guest-1"), "{out}");
    assert_eq!(lines[1], "*** you are now netcat");
    assert!(lines[2].starts_with("*** 1 member: netcat"), "{out}");
    assert_eq!(lines[3], "*** bye, netcat");
}

#[test]
fn curl_gets_hello_and_echoes_a_body() {
    if !common::have("curl") {
        return;
    }
    let server = Binary::start(&["serve", "--http", "127.0.0.1:0"]);
    let base = format!("http://{}", server.addr("http:tcp"));
    let out = common::output(Command::new("curl").args(["-sS", "-i", &format!("{base}/")]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nHello, World!\n"), "{text}");
    let out = common::output_with_input(
        Command::new("curl").args(["-sS", "--data-binary", "@-", &format!("{base}/echo")]),
        &[b'q'; 100_000],
    );
    assert_eq!(out.stdout.len(), 100_000);
    // curl sends `Expect: 100-continue` for large bodies and chunked encoding from stdin when
    // asked: both must work.
    let out = common::output(Command::new("curl").args([
        "-sS",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "chunked body",
        &format!("{base}/echo"),
    ]));
    assert_eq!(out.stdout, b"chunked body");
}

#[test]
fn redis_cli_and_redis_benchmark_work_unmodified() {
    if !common::have("redis-cli") || !common::have("redis-benchmark") {
        return;
    }
    let server = Binary::start(&["serve", "--kv", "127.0.0.1:0"]);
    let port = server.addr("kv:tcp").port().to_string();
    let cli = |args: &[&str]| {
        let out = common::output(Command::new("redis-cli").args(["-p", &port]).args(args));
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(cli(&["PING"]), "PONG\n");
    assert_eq!(cli(&["SET", "greeting", "Hello, Server!"]), "OK\n");
    assert_eq!(cli(&["GET", "greeting"]), "Hello, Server!\n");
    assert_eq!(cli(&["DBSIZE"]), "1\n");
    assert!(cli(&["INFO", "keyspace"]).contains("db0:keys=1"));
    // The key-listing tools that walk the keyspace with SCAN (and MEMORY USAGE, TYPE, STRLEN).
    assert_eq!(cli(&["MSET", "user:1", "a", "user:2", "bb", "user:30", "ccc"]), "OK\n");
    let mut listed: Vec<String> = cli(&["--scan", "--pattern", "user:?"]).lines().map(String::from).collect();
    listed.sort();
    assert_eq!(listed, ["user:1", "user:2"]);
    let big = cli(&["--bigkeys"]);
    assert!(
        big.contains("Sampled 4 keys") && big.contains("Biggest string found '\"greeting\"' has 14 bytes"),
        "{big}"
    );
    let mem = cli(&["--memkeys"]);
    assert!(mem.contains("4 strings with") && !mem.contains("4 strings with 0 bytes"), "{mem}");
    // Interactive help: redis-cli asks COMMAND DOCS at start and, told it is not served,
    // falls back to the help compiled into it (an empty answer left it with none).
    let out = common::output_with_input(Command::new("redis-cli").args(["-p", &port]), b"help set\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Set the string value of a key"), "{text}");
    // Mass insertion, Redis's documented way: raw protocol on stdin, then redis-cli sends an
    // ECHO of a random marker and reads replies until it comes back.
    let mass: Vec<u8> =
        (0..1000).flat_map(|i| common::resp(&[b"SET", format!("bulk:{i}").as_bytes(), b"v"])).collect();
    let out = common::output_with_input(Command::new("redis-cli").args(["-p", &port, "--pipe"]), &mass);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("errors: 0, replies: 1000"), "{text}");
    assert_eq!(cli(&["DBSIZE"]), "1004\n");
    let out = common::output(Command::new("redis-benchmark").args([
        "-p",
        &port,
        "-q",
        "-n",
        "20000",
        "-t",
        "ping,set,get,incr,mset",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET"] {
        assert!(text.contains(test) && text.contains("requests per second"), "{text}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("ERR"), "redis-benchmark complained: {stderr}");
}

/// With `--kv-requirepass`, redis-cli and redis-benchmark are refused until they give the
/// password (`-a`), and work once they do, as against `redis-server --requirepass`.
#[test]
fn redis_cli_and_redis_benchmark_log_in_with_a_password() {
    if !common::have("redis-cli") || !common::have("redis-benchmark") {
        return;
    }
    let server = Binary::start(&["serve", "--kv", "127.0.0.1:0", "--kv-requirepass", "s3cret"]);
    let port = server.addr("kv:tcp").port().to_string();
    let cli = |args: &[&str]| {
        let out = common::output(Command::new("redis-cli").args(["-p", &port]).args(args));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(cli(&["SET", "k", "v"]), "NOAUTH Authentication required.\n\n");
    assert_eq!(cli(&["-a", "wrong", "--no-auth-warning", "GET", "k"]), "NOAUTH Authentication required.\n\n");
    assert_eq!(cli(&["-a", "s3cret", "--no-auth-warning", "SET", "k", "v"]), "OK\n");
    assert_eq!(cli(&["-a", "s3cret", "--no-auth-warning", "GET", "k"]), "v\n");
    let bench = |password: Option<&str>| {
        let mut command = Command::new("redis-benchmark");
        command.args(["-p", &port, "-q", "-n", "2000", "-t", "set,get"]);
        if let Some(password) = password {
            command.args(["-a", password]);
        }
        let out = common::output(&mut command);
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let refused = bench(None);
    assert!(refused.contains("NOAUTH") && !refused.contains("requests per second"), "{refused}");
    let served = bench(Some("s3cret"));
    assert!(served.contains("SET: ") && served.contains("GET: ") && !served.contains("NOAUTH"), "{served}");
}

/// `redis-cli SUBSCRIBE` (a long-running client that only reads pushes) receives what another
/// `redis-cli PUBLISH`es, channel and pattern alike.
#[test]
fn redis_cli_subscribes_and_receives_what_another_publishes() {
    if !common::have("redis-cli") {
        return;
    }
    let server = Binary::start(&["serve", "--kv", "127.0.0.1:0"]);
    let port = server.addr("kv:tcp").port().to_string();
    let mut subscriber = Command::new("redis-cli")
        .args(["-p", &port, "--csv", "SUBSCRIBE", "news"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let cli = |args: &[&str]| {
        let out = common::output(Command::new("redis-cli").args(["-p", &port]).args(args));
        String::from_utf8(out.stdout).unwrap()
    };
    // Publish once the subscription is in place (within 5 s).
    let mut tries = 0;
    while cli(&["PUBSUB", "NUMSUB", "news"]) != "news\n1\n" {
        tries += 1;
        assert!(tries < 500, "redis-cli never subscribed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Read what the subscriber prints on a thread until the message shows: PUBLISH's `1` says
    // the server handed it over, not that redis-cli has printed it yet (killing it at once
    // lost the line now and then on a busy machine).
    let stdout = subscriber.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(cli(&["PUBLISH", "news", "hello from redis-cli"]), "1\n");
    let mut text = String::new();
    while !text.contains("\"message\",\"news\",\"hello from redis-cli\"") {
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(line) => text.push_str(&(line + "\n")),
            Err(_) => panic!("redis-cli did not print the message: {text}"),
        }
    }
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    assert!(text.contains("\"subscribe\",\"news\",1"), "{text}");
}

/// redis-py, the most used Python client (RESP3 by default since 8.0: HELLO 3 with AUTH and
/// SETNAME, then RESP3 nulls and maps), then the same checks over RESP2. The script
/// (`tests/data/redis_py.py`) passes against redis-server 7.0.15 unchanged; `.ci/run` installs
/// redis-py with pip.
#[test]
fn redis_py_works_over_resp3_and_resp2() {
    let importable = Command::new("python3").args(["-c", "import redis"]).output();
    if !importable.is_ok_and(|o| o.status.success()) {
        eprintln!("note: python3 with redis-py is not installed; skipping (CI installs it)");
        return;
    }
    let server = Binary::start(&["serve", "--kv", "127.0.0.1:0"]);
    let port = server.addr("kv:tcp").port().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/redis_py.py");
    let out = common::output(Command::new("python3").args([script, &port]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("RESP3: ok") && stdout.contains("RESP2: ok"), "{stdout}");
}
