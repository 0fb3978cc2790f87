//! Table-driven parser and encoder tests.

use super::*;
use letterbox_mail::mailbox::FlagOp;

fn ok(line: &str) -> Command {
    match parse_command(line.as_bytes()) {
        Ok((_, c)) => c,
        Err(e) => panic!("{line:?}: {e}"),
    }
}

#[test]
fn simple_commands() {
    let cases: &[(&str, Command)] = &[
        ("a CAPABILITY", Command::Capability),
        ("a noop", Command::Noop),
        ("a1 LOGOUT", Command::Logout),
        ("x STARTTLS", Command::StartTls),
        ("x NAMESPACE", Command::Namespace),
        ("x IDLE", Command::Idle),
        ("x CLOSE", Command::Close),
        ("x UNSELECT", Command::Unselect),
        ("x EXPUNGE", Command::Expunge { uids: None }),
        (
            "x LOGIN bob@example.test \"pa ss\\\"w\"",
            Command::Login {
                user: "bob@example.test".into(),
                password: "pa ss\"w".into(),
            },
        ),
        (
            "x LOGIN {3}\r\nbob {2+}\r\npw",
            Command::Login {
                user: "bob".into(),
                password: "pw".into(),
            },
        ),
        (
            "x AUTHENTICATE plain",
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: None,
            },
        ),
        (
            "x AUTHENTICATE PLAIN AGJvYgBwdw==",
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(b"AGJvYgBwdw==".to_vec()),
            },
        ),
        (
            "x AUTHENTICATE PLAIN =",
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(b"=".to_vec()),
            },
        ),
        ("x ID NIL", Command::Id(vec![])),
        (
            "x ID (\"name\" \"mutt\" \"version\" NIL)",
            Command::Id(vec![("name".into(), Some("mutt".into())), ("version".into(), None)]),
        ),
        (
            "x ENABLE imap4rev2 UTF8=ACCEPT",
            Command::Enable(vec!["IMAP4REV2".into(), "UTF8=ACCEPT".into()]),
        ),
        (
            "x select inbox",
            Command::Select {
                mailbox: "INBOX".into(),
                read_only: false,
                condstore: false,
                qresync: None,
            },
        ),
        (
            "x EXAMINE \"Sent\"",
            Command::Select {
                mailbox: "Sent".into(),
                read_only: true,
                condstore: false,
                qresync: None,
            },
        ),
        (
            "x CREATE Foo (USE (\\Archive))",
            Command::Create {
                mailbox: "Foo".into(),
                special_use: Some(letterbox_mail::mailbox::SpecialUse::Archive),
            },
        ),
        (
            "x LIST \"\" *",
            Command::List {
                reference: "".into(),
                patterns: vec!["*".into()],
                select: Default::default(),
                ret: Default::default(),
                extended: false,
            },
        ),
        (
            "x LIST \"\" (INBOX% \"Foo/*\")",
            Command::List {
                reference: "".into(),
                patterns: vec!["INBOX%".into(), "Foo/*".into()],
                select: Default::default(),
                ret: Default::default(),
                extended: true,
            },
        ),
        (
            "x LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (CHILDREN STATUS (MESSAGES UNSEEN))",
            Command::List {
                reference: "".into(),
                patterns: vec!["%".into()],
                select: crate::proto::ListSelect {
                    subscribed: true,
                    recursive_match: true,
                    ..Default::default()
                },
                ret: crate::proto::ListReturn {
                    children: true,
                    status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
                    ..Default::default()
                },
                extended: true,
            },
        ),
        (
            "x STATUS inbox (MESSAGES UIDNEXT unseen)",
            Command::Status {
                mailbox: "INBOX".into(),
                items: vec![StatusItem::Messages, StatusItem::UidNext, StatusItem::Unseen],
            },
        ),
        (
            "x APPEND INBOX (\\Seen) \" 5-Mar-2024 10:00:00 +0100\" {2}\r\nhi",
            Command::Append {
                mailbox: "INBOX".into(),
                messages: vec![AppendMessage {
                    flags: vec!["\\Seen".into()],
                    date: Some(1_709_629_200),
                    message: b"hi".to_vec(),
                    binary: false,
                }],
            },
        ),
        (
            "x APPEND INBOX {2+}\r\nhi (\\Draft) {3}\r\nabc \" 5-Mar-2024 10:00:00 +0100\" {0}\r\n",
            Command::Append {
                mailbox: "INBOX".into(),
                messages: vec![
                    AppendMessage {
                        flags: vec![],
                        date: None,
                        message: b"hi".to_vec(),
                        binary: false,
                    },
                    AppendMessage {
                        flags: vec!["\\Draft".into()],
                        date: None,
                        message: b"abc".to_vec(),
                        binary: false,
                    },
                    AppendMessage {
                        flags: vec![],
                        date: Some(1_709_629_200),
                        message: Vec::new(),
                        binary: false,
                    },
                ],
            },
        ),
        (
            "x UID STORE 1:* +FLAGS.SILENT (\\Deleted $Junk)",
            Command::Store {
                uid: true,
                set: SeqSet(vec![(SeqNum::Num(1), SeqNum::Star)]),
                unchanged_since: None,
                op: FlagOp::Add,
                silent: true,
                flags: vec!["\\Deleted".into(), "$Junk".into()],
            },
        ),
        (
            "x STORE 2,4:3 FLAGS \\Seen",
            Command::Store {
                uid: false,
                set: SeqSet(vec![(SeqNum::Num(2), SeqNum::Num(2)), (SeqNum::Num(4), SeqNum::Num(3))]),
                unchanged_since: None,
                op: FlagOp::Replace,
                silent: false,
                flags: vec!["\\Seen".into()],
            },
        ),
        (
            "x UID MOVE 5 Trash",
            Command::Copy {
                uid: true,
                set: SeqSet(vec![(SeqNum::Num(5), SeqNum::Num(5))]),
                mailbox: "Trash".into(),
                is_move: true,
            },
        ),
        (
            "x UID EXPUNGE 1:3",
            Command::Expunge {
                uids: Some(SeqSet(vec![(SeqNum::Num(1), SeqNum::Num(3))])),
            },
        ),
    ];
    for (line, want) in cases {
        assert_eq!(&ok(line), want, "{line}");
    }
}

#[test]
fn fetch_items() {
    let Command::Fetch { uid, atts, .. } = ok(
        "x UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From \"Subject\")]<0.100> BINARY.SIZE[1] BODY[] RFC822.SIZE)",
    ) else {
        panic!("not a fetch");
    };
    assert!(uid);
    assert_eq!(atts.len(), 5);
    assert_eq!(atts[0], FetchAtt::Flags);
    match &atts[1] {
        FetchAtt::Section {
            peek, text, partial, ..
        } => {
            assert!(*peek);
            assert_eq!(text, "HEADER.FIELDS (From \"Subject\")");
            assert_eq!(*partial, Some((0, 100)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(atts[2], FetchAtt::BinarySize(vec![1]));
    assert!(matches!(
        &atts[3],
        FetchAtt::Section {
            peek: false,
            partial: None,
            ..
        }
    ));
    let Command::Fetch { atts, .. } = ok("x FETCH 1 ALL") else {
        panic!()
    };
    assert_eq!(atts.len(), 4);
    let Command::Fetch { atts, .. } = ok("x FETCH 1 body") else {
        panic!()
    };
    assert_eq!(atts, vec![FetchAtt::Body]);
    // `<start>` without a length reads to the end (as Dovecot allows).
    let Command::Fetch { atts, .. } = ok("x FETCH 1 BINARY.PEEK[1]<40>") else {
        panic!()
    };
    assert!(matches!(
        &atts[0],
        FetchAtt::Binary {
            partial: Some((40, u32::MAX)),
            ..
        }
    ));
}

#[test]
fn bad_commands() {
    let cases = [
        "",
        "x",
        "x ",
        "+ NOOP",
        "x FOO",
        "x NOOP extra",
        "x LOGIN bob",
        "x LOGIN \"bob pw",
        "x LOGIN {10}\r\nbob",
        "x FETCH 0 FLAGS",
        "x FETCH 1:x FLAGS",
        "x FETCH 1 (FLAGS",
        "x FETCH 1 (FLAGS))",
        "x FETCH 1 BODY[1.0]",
        "x FETCH 1 BODY[HEADER.FIELDS ()]",
        "x FETCH 1 BODY[]<1.>",
        "x STORE 1 FLAGZ (\\Seen)",
        "x UID FROB 1",
        "x APPEND INBOX \"31-Foo-2024 10:00:00 +0000\" {1}\r\na",
        "x STATUS INBOX (BOGUS)",
        "x ENABLE",
        "x CREATE Foo (USE (\\Bogus))",
        "x LOGIN \"a\\b\" c",
    ];
    for line in cases {
        assert!(parse_command(line.as_bytes()).is_err(), "{line:?} parsed");
    }
}

#[test]
fn literal_markers() {
    let cases: &[(&str, Option<(u64, bool)>)] = &[
        ("a LOGIN {5}", Some((5, false))),
        ("a LOGIN {5+}", Some((5, true))),
        ("a APPEND x ~{12}", Some((12, false))),
        ("a LOGIN {}", None),
        ("a LOGIN {x}", None),
        ("a LOGIN 5}", None),
        ("a LOGIN {99999999999999999999}", None),
        ("a NOOP", None),
    ];
    for (line, want) in cases {
        let got = literal_marker(line.as_bytes()).map(|m| (m.len, m.non_sync));
        assert_eq!(got, *want, "{line}");
    }
}

#[test]
fn sequence_sets() {
    let Command::Fetch { set, .. } = ok("x FETCH 1,3:5,*,9:7 FLAGS") else {
        panic!()
    };
    let got: Vec<u32> = (1..=12).filter(|&n| set.contains(n, 12)).collect();
    assert_eq!(got, vec![1, 3, 4, 5, 7, 8, 9, 12]);
}

#[test]
fn encoding() {
    let cases: &[(&[u8], &str)] = &[
        (b"abc", "\"abc\""),
        (b"a\"b\\", "\"a\\\"b\\\\\""),
        (b"x\r\ny", "{4}\r\nx\r\ny"),
        ("caf\u{e9}".as_bytes(), "{5}\r\ncaf\u{e9}"),
    ];
    for (input, want) in cases {
        let mut out = Vec::new();
        push_string(&mut out, input);
        assert_eq!(String::from_utf8(out).unwrap(), *want);
    }
    let mut out = Vec::new();
    push_astring(&mut out, "INBOX");
    out.push(b' ');
    push_astring(&mut out, "My Box");
    out.push(b' ');
    push_astring(&mut out, "");
    assert_eq!(out, b"INBOX \"My Box\" \"\"");
    assert_eq!(format_date_time(0), "\"01-Jan-1970 00:00:00 +0000\"");
    assert_eq!(format_date_time(1_709_629_200), "\"05-Mar-2024 09:00:00 +0000\"");
}

#[test]
fn append_literal8_is_marked_binary() {
    // RFC 3516 §4.4: the message may carry binary parts.
    let Command::Append { messages, .. } = ok("x APPEND INBOX ~{3}\r\na\0b") else {
        panic!()
    };
    assert_eq!(messages[0].message, b"a\0b");
    assert!(messages[0].binary);
    let Command::Append { messages, .. } = ok("x APPEND INBOX {1}\r\na") else {
        panic!()
    };
    assert!(!messages[0].binary);
}

/// RFC 7162 §3.1.3, §3.1.4.1, §3.1.8, §3.2.5 and §3.2.6 syntax.
#[test]
fn condstore_and_qresync_syntax() {
    let Command::Store {
        unchanged_since,
        op,
        silent,
        ..
    } = ok("a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)")
    else {
        panic!()
    };
    assert_eq!((unchanged_since, op, silent), (Some(12_121_230_045), FlagOp::Add, true));
    let Command::Fetch {
        uid,
        atts,
        changed_since,
        vanished,
        ..
    } = ok("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)")
    else {
        panic!()
    };
    assert!(uid && vanished);
    assert_eq!((atts, changed_since), (vec![FetchAtt::Flags], Some(12345)));
    let Command::Fetch { atts, .. } = ok("a FETCH 1:3 (MODSEQ)") else {
        panic!()
    };
    assert_eq!(atts, vec![FetchAtt::ModSeq]);
    // VANISHED is for UID FETCH only, and needs CHANGEDSINCE.
    assert!(parse_command(b"s FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)").is_err());
    assert!(parse_command(b"s UID FETCH 1:* (FLAGS) (VANISHED)").is_err());
    let Command::Select { condstore, qresync, .. } = ok("A142 SELECT INBOX (CONDSTORE)") else {
        panic!()
    };
    assert!(condstore && qresync.is_none());
    let Command::Select { qresync, .. } = ok("A03 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))")
    else {
        panic!()
    };
    let q = qresync.unwrap();
    assert_eq!((q.uid_validity, q.modseq), (67_890_007, 90_060_115_194_045_000));
    assert_eq!(q.known_uids.unwrap().to_text(), "41:211,214:541");
    let Command::Select { qresync, .. } = ok(
        "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
    ) else {
        panic!()
    };
    let (seqs, uids) = qresync.unwrap().seq_match.unwrap();
    assert_eq!(seqs.to_text(), "5000,7500,9000,9990:9999");
    assert!(uids.contains(29_997, 0));
    let Command::Select { qresync, .. } = ok("x EXAMINE INBOX (QRESYNC (1 2))") else {
        panic!()
    };
    assert!(qresync.unwrap().known_uids.is_none());
    assert!(parse_command(b"x SELECT INBOX (QRESYNC (1 0))").is_err());
    assert!(parse_command(b"x SELECT INBOX (FOO)").is_err());
    let Command::Status { items, .. } = ok("A042 STATUS blurdybloop (UIDNEXT MESSAGES HIGHESTMODSEQ)") else {
        panic!()
    };
    assert_eq!(items[2], StatusItem::HighestModSeq);
}

/// RFC 8970, RFC 9208, RFC 8437, RFC 6855 §4 and RFC 7889 syntax.
#[test]
fn preview_quota_unauthenticate_utf8_append() {
    let Command::Fetch { atts, .. } = ok("B1 FETCH 1:4 (ENVELOPE PREVIEW (LAZY))") else {
        panic!()
    };
    assert_eq!(atts[1], FetchAtt::Preview { lazy: true });
    let Command::Fetch {
        atts, changed_since, ..
    } = ok("x FETCH 1 PREVIEW (CHANGEDSINCE 4)")
    else {
        panic!()
    };
    assert_eq!(
        (atts, changed_since),
        (vec![FetchAtt::Preview { lazy: false }], Some(4))
    );
    assert_eq!(ok("G0001 GETQUOTA \"\""), Command::GetQuota(String::new()));
    assert_eq!(ok("G0002 GETQUOTAROOT inbox"), Command::GetQuotaRoot("INBOX".into()));
    assert_eq!(
        ok("S1 SETQUOTA \"\" (STORAGE 510 MESSAGE 7)"),
        Command::SetQuota(String::new())
    );
    assert_eq!(ok("u UNAUTHENTICATE"), Command::Unauthenticate);
    let Command::Append { messages, .. } = ok("a APPEND INBOX UTF8 (~{3}\r\nabc)") else {
        panic!()
    };
    assert_eq!(
        (messages[0].message.as_slice(), messages[0].binary),
        (&b"abc"[..], true)
    );
    let Command::Status { items, .. } = ok("s STATUS INBOX (DELETED-STORAGE APPENDLIMIT)") else {
        panic!()
    };
    assert_eq!(items, vec![StatusItem::DeletedStorage, StatusItem::AppendLimit]);
}
