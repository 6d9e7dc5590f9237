#!/usr/bin/env python3
"""riskctl behaviour that a mutation round over tools/riskctl*.c found
unpinned by test_cli.py: each test names the mutant(s) it kills.

Runs like test_cli.py (RISKCTL names the program) and reuses its Base."""
import hashlib
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli  # noqa: E402
from test_cli import Base, RISKCTL, T0, T0_MS  # noqa: E402


class TestTimeParsing(Base):
    def test_gregorian_leap_years(self):
        # TIME (docs/riskctl.md): a real UTC date. 2000 is a leap year (every
        # 400th), 2100 is not. Kills riskctl.c parse_time `y % 400 == 0`
        # -> `!= 0`.
        self.js('--memory', '--now', '2000-02-29T00:00:00Z', 'users')
        self.refused('RISK_EINVAL', '--memory', '--now', '2100-02-29T00:00:00Z', 'users', code=2)
        self.refused('RISK_EINVAL', '--memory', '--now', '2026-02-29T00:00:00Z', 'users', code=2)

    def test_latest_time_is_2_pow_53_minus_1(self):
        # docs/riskctl.md: the latest time is 287396-10-12T08:59:00.991Z
        # (2^53 - 1 ms); one ms later is a usage error, in ISO form as in
        # milliseconds. Kills riskctl.c parse_time `t >= RISK_TIME_MAX`
        # -> `t > RISK_TIME_MAX`.
        u = self.js('--memory', '--now', '287396-10-12T08:59:00.991Z', 'user', 'set', 'a')
        self.assertEqual(u['risk_updated_at'], 2 ** 53 - 1)
        self.refused('RISK_EINVAL', '--memory', '--now', '287396-10-12T08:59:00.992Z',
                     'user', 'set', 'a', code=2)
        self.refused('RISK_EINVAL', '--memory', '--now', str(2 ** 53), 'user', 'set', 'a',
                     code=2)

    def test_malformed_iso_times(self):
        # TIME is exactly YYYY-MM-DDTHH:MM:SS[.mmm]Z in UTC; anything else is
        # a usage error (docs/riskctl.md). Kills riskctl.c parse_time
        # `r[19] != 'Z'` (any last character after milliseconds) and
        # `se > 59` -> `se > 60` (second 60 read as the next minute).
        self.js('--memory', '--now', '2026-11-24T10:00:59.250Z', 'users')
        for bad in ('2026-11-24T10:00:00.250X', '2026-11-24T10:00:00.250z',
                    '2026-11-24T10:00:60Z', '2026-11-24T10:00:60.000Z'):
            with self.subTest(bad=bad):
                self.refused('RISK_EINVAL', '--memory', '--now', bad, 'users', code=2)
                self.refused('RISK_EINVAL', '--memory', 'event', 'add', 'u', 'e1',
                             'leakedCredentials', 'low', '--at', bad, code=2)


class TestErrorObjects(Base):
    def test_only_check_errors_carry_seq(self):
        # docs/riskctl.md Output: an error is {"error", "code", "message"};
        # only `check` adds "seq". Kills riskctl.c print_error
        # `if (c->error_seq)` -> `if (1)`.
        out = self.refused('RISK_ENOTFOUND', '--memory', 'user', 'show', 'nobody')
        self.assertEqual(sorted(out), ['code', 'error', 'message'])
        out = self.refused('RISK_EINVAL', 'users', '--min-level', 'extreme', code=2)
        self.assertEqual(sorted(out), ['code', 'error', 'message'])
        out = self.js('check', code=1)  # no journal: RISK_ENOTFOUND, "seq": null
        self.assertEqual((out['error'], out['seq']), ('RISK_ENOTFOUND', None))


class TestArguments(Base):
    def test_flag_given_a_value_is_a_usage_error(self):
        # `--option=VALUE` is for options that take a value; a flag given one
        # (`--mfa=no`) is a usage error (exit 2) that changes nothing, not
        # the flag set. Kills riskctl.c get_opts `else if (eq)` -> `else if (0)`.
        self.js('user', 'set', 'a')
        before = self.digest()
        out = self.refused('RISK_EINVAL', 'user', 'set', 'a', '--mfa=no', code=2)
        self.assertIn('takes no value', out['message'])
        self.refused('RISK_EINVAL', 'events', 'a', '--active=yes', code=2)
        self.assertEqual(before, self.digest())
        self.assertFalse(self.js('user', 'show', 'a')['mfa_registered'])


    def test_global_option_is_matched_whole(self):
        # A global option is its whole name (`--now`, `--store`, `--actor`),
        # or the name and `=VALUE`: `--nowx 5` is an unknown option (exit 2),
        # not --now 5. Kills riskctl.c main `(a[l] == '\\0' || a[l] == '=')` -> `1`.
        self.refused('RISK_EINVAL', '--memory', 'users', '--nowx', '5', code=2)
        self.refused('RISK_EINVAL', '--memory', '--actorx', 'bob', 'user', 'set', 'a',
                     code=2)
        self.assertIsNone(self.digest())

    def test_extra_positional_argument_is_a_usage_error(self):
        # One more argument than the synopsis allows is a usage error that
        # changes nothing (`resolve e1 e2` must not resolve e1 alone and
        # drop e2). Kills riskctl_cmd.c want_pos `npos > max` -> `npos > max + 1`.
        self.refused('RISK_EINVAL', 'user', 'set', 'a', 'b', code=2)
        self.assertIsNone(self.digest())
        self.event('a', 'e1', 'high', T0_MS)
        self.event('a', 'e2', 'low', T0_MS)
        before = self.digest()
        self.refused('RISK_EINVAL', 'resolve', 'e1', 'e2', code=2)
        self.refused('RISK_EINVAL', 'user', 'show', 'a', 'b', code=2)
        self.assertEqual(before, self.digest())
        self.assertEqual(self.js('event', 'show', 'e1')['state'], 'active')

    def test_dismiss_of_only_invalid_ids_creates_no_store(self):
        # docs/riskctl.md: invalid ids are refused before the store is
        # opened; a dismiss whose ids are all invalid does not open, or
        # create, the store (R-DI-4: each user fails on its own). Kills
        # riskctl_cmd.c cmd_dismiss `nv > 0 && (rc = open_engine(...))` ->
        # `(rc = open_engine(...))`.
        out = self.js('dismiss', 'x' * 300, '', code=1)
        self.assertEqual((out['ok'], out['failed']), (0, 2))
        self.assertEqual([r['error'] for r in out['results']], ['RISK_EINVAL'] * 2)
        self.assertIsNone(self.digest())
        self.assertFalse(os.path.exists(os.path.dirname(self.store)))
        p = self.run_ctl('dismiss', 'x' * 300)
        self.assertEqual(p.returncode, 1)
        self.assertNotIn(b'no journal', p.stderr)

    def test_dismiss_summary_counts_events(self):
        # The human lines as docs/riskctl.md shows them: "dismissed 1 active
        # event", plural otherwise (a user without active events succeeds
        # with 0 closed, R-DI-3). Kills riskctl_cmd.c cmd_dismiss
        # `closed[i] == 1 ? "" : "s"` -> `closed[i] <= 1 ? ...`.
        self.event('a', 'e1', 'high', T0_MS)
        self.js('user', 'set', 'b')
        out = self.ok('dismiss', 'a', 'b')
        self.assertEqual(out, 'a: dismissed 1 active event\nb: dismissed 0 active events\n'
                              '2 dismissed, 0 failed\n')


class TestImportCsv(Base):
    write = test_cli.TestImport.write  # a CSV file in the test's directory

    def test_unterminated_quote_at_end_of_input_is_a_broken_line(self):
        # RFC 4180: a quoted field must be closed. At the end of the input
        # an open quote makes its line broken (reported, skipped, exit 1),
        # not a field that ends there. Kills riskctl_csv.c csv_next
        # `if (st == QUOTED) broken(...)` at EOF -> `if (0)`.
        csv = ('user_id,id,type,level\n'
               'u,e1,leakedCredentials,low\n'
               'u,e2,leakedCredentials,"high')
        out = self.js('event', 'import', self.write('q.csv', csv), code=1)
        self.assertEqual((out['ok'], out['failed']), (1, 1))
        bad = out['results'][1]
        self.assertEqual((bad['line'], bad['ok'], bad['error']), (3, False, 'RISK_EINVAL'))
        self.assertIn('unterminated', bad['message'])
        self.refused('RISK_ENOTFOUND', 'event', 'show', 'e2')

    def test_cr_that_ends_the_input_ends_the_line(self):
        # docs/riskctl.md: a bare CR outside quotes breaks its line, but a CR
        # that ends the input is the line end of a CRLF file that lost its
        # last LF. Kills riskctl_csv.c csv_next `if (nx == EOF) break;`
        # dropped (the last line reported broken).
        out = self.js('event', 'import', self.write(
            'cr.csv', 'user_id,id,type,level\r\nu,e1,leakedCredentials,low\r'))
        self.assertEqual((out['ok'], out['failed']), (1, 0))
        out = self.js('event', 'import', self.write(
            'cr2.csv', 'user_id,id,type,level\r\nu,e2,leakedCredentials,low\rx'), code=1)
        self.assertEqual((out['ok'], out['failed']), (0, 1))
        self.assertIn('bare CR', out['results'][0]['message'])

    def test_header_field_named_twice_refuses_the_file(self):
        # A header naming a field twice is refused before anything is
        # written (which column would count is not for the program to
        # guess). Kills riskctl_import.c read_header duplicate check -> `if (0)`.
        self.event('a', 'e0', 'low', T0_MS)
        before = self.digest()
        out = self.refused('RISK_EINVAL', 'event', 'import', self.write(
            'h.csv', 'user_id,id,type,level,level\nb,e1,leakedCredentials,low,high\n'))
        self.assertIn('named twice', out['message'])
        self.assertEqual(before, self.digest())

    def test_line_with_an_extra_field_is_broken(self):
        # "wrong field count" (docs/riskctl.md) is too many fields as well as
        # too few: the line is reported and skipped. Kills riskctl_import.c
        # parse_line `r->nf != im->ncols` -> `r->nf < im->ncols`.
        csv = ('user_id,id,type,level\n'
               'u,e1,leakedCredentials,low,extra\n'
               'u,e2,leakedCredentials,low\n')
        out = self.js('event', 'import', self.write('x.csv', csv), code=1)
        self.assertEqual([(r['line'], r['ok']) for r in out['results']], [(2, False), (3, True)])
        self.assertIn('5 fields where the header has 4', out['results'][0]['message'])
        # `changed` is 1 for a line that applied, 0 for a failed one. Kills
        # riskctl_import.c print_results `changed` -> always 1.
        self.assertEqual([r['changed'] for r in out['results']], [0, 1])
        self.refused('RISK_ENOTFOUND', 'event', 'show', 'e1')

    def test_empty_optional_values_are_absent(self):
        # docs/riskctl.md: an empty value of an optional column means absent
        # (SPEC §2: ip, location, source are optional): null in --json, not
        # "". Kills riskctl_import.c parse_line `f[F_IP] && *f[F_IP]` -> `f[F_IP]`.
        csv = ('user_id,id,type,level,ip,location,source,timing\n'
               'u,e1,leakedCredentials,low,,,,\n')
        out = self.js('event', 'import', self.write('e.csv', csv))
        self.assertEqual((out['ok'], out['failed']), (1, 0))
        e = self.js('event', 'show', 'e1')
        self.assertEqual((e['ip'], e['location'], e['source'], e['timing']),
                         (None, None, None, 'realtime'))

    def test_explicit_detected_at_is_not_replaced_by_the_stored_one(self):
        # Only a line without detected_at takes the stored event's time. A
        # line that gives another detected_at for a stored id is a different
        # detection under a taken id: RISK_EEXISTS (R-OP-1), the stored
        # event unchanged. Kills riskctl_import.c take_batch
        # `it->no_time && stored_time(...)` -> `stored_time(...)`.
        self.event('u', 'e1', 'low', T0_MS)
        before = self.digest()
        csv = ('user_id,id,type,level,detected_at\n'
               'u,e1,leakedCredentials,low,%d\n' % (T0_MS + 1000))
        out = self.js('event', 'import', self.write('t.csv', csv), code=1)
        self.assertEqual(out['results'][0]['error'], 'RISK_EEXISTS')
        self.assertEqual(self.js('event', 'show', 'e1')['detected_at'], T0_MS)
        self.assertEqual(before, self.digest())


    def test_summary_line_counts(self):
        # The human summary as docs/riskctl.md shows it: "imported 1 line,
        # 1 failed", plural otherwise. Kills riskctl_import.c print_results
        # `im->ok == 1 ? "" : "s"` -> `im->ok == 0 ? ...`.
        hdr = 'user_id,id,type,level\n'
        p = self.run_ctl('event', 'import', self.write(
            'a.csv', hdr + 'u,e1,leakedCredentials,low\nu,e2,leakedCredentials,extreme\n'))
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stdout.startswith(b'imported 1 line, 1 failed ('), p.stdout)
        self.assertIn(b'line 3: RISK_EINVAL', p.stderr)
        self.assertNotIn(b'line 3', p.stdout)
        p = self.run_ctl('event', 'import', self.write('b.csv', hdr))
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith(b'imported 0 lines, 0 failed ('), p.stdout)


class TestEscaping(Base):
    def test_json_escapes_control_characters_as_their_code_point(self):
        # --json prints exactly one JSON value, also for errors: a control
        # character riskctl echoes (here in a usage error's message) comes
        # back as itself, \u001b being ESC (not \u0027, its decimal
        # digits). Kills riskctl_json.c json_escape `\\u%04x` -> `\\u%04d`.
        p = self.run_ctl('--memory', '--json', 'users', '--min-level', 'x\x1by\x01z')
        self.assertEqual(p.returncode, 2)
        self.assertIn(b'x\\u001by\\u0001z', p.stdout)
        out = json.loads(p.stdout)
        self.assertIn("'x\x1by\x01z'", out['message'])

    def test_json_replaces_invalid_utf8_surrogates(self):
        # The JSON output is always valid UTF-8: bytes that would encode a
        # UTF-16 surrogate (ED A0 80, not UTF-8) are written U+FFFD. Kills
        # riskctl_json.c utf8_len surrogate check removed.
        p = self.run_ctl('--memory', '--json', 'users', '--min-level', b'a\xed\xa0\x80b')
        self.assertEqual(p.returncode, 2)
        out = json.loads(p.stdout.decode('utf-8'))  # strict: raw surrogates fail here
        self.assertIn("'a\ufffd\ufffd\ufffdb'", out['message'])

    def test_human_output_escapes_line_and_paragraph_separators(self):
        # docs/riskctl.md: human output writes the line-breaking and
        # bidirectional format characters of stored text as \uXXXX; U+2028
        # and U+2029 break lines like LF does. --json keeps them. Kills
        # riskctl_out.c unsafe_len `c >= 0x2028` -> `c >= 0x202A`.
        loc = 'Paris\u2028state           closed\u2029x'
        self.event('m', 'e1', 'high', T0_MS, 'unfamiliarFeatures', '--location', loc)
        out = self.ok('event', 'show', 'e1')
        self.assertNotIn('\u2028', out)
        self.assertNotIn('\u2029', out)
        self.assertIn('Paris\\u2028state           closed\\u2029x', out)
        self.assertEqual(self.js('event', 'show', 'e1')['location'], loc)

    def test_human_output_escapes_bidi_isolates(self):
        # The bidirectional isolates U+2066-U+2069 (LRI, RLI, FSI, PDI)
        # reorder what is read like U+202E does: human output writes them
        # \uXXXX, --json keeps them. Kills riskctl_out.c unsafe_len
        # `s[2] <= 0xA9` -> `s[2] <= 0xA4`.
        src = 'siem\u2066\u2067\u2068x\u2069'
        self.event('m', 'e1', 'high', T0_MS, 'unfamiliarFeatures', '--source', src)
        out = self.ok('event', 'show', 'e1')
        for ch in '\u2066\u2067\u2068\u2069':
            self.assertNotIn(ch, out)
        self.assertIn('siem\\u2066\\u2067\\u2068x\\u2069', out)
        self.assertEqual(self.js('event', 'show', 'e1')['source'], src)


class TestHistoryChain(Base):
    def test_history_chain_is_the_head_the_anchor_covers(self):
        # R-AU-1, R-AU-3: `history --json` gives each item's chain hash in
        # hex; the anchor is SHA-256 over "librisk-anchor-1" and, per
        # subject, len32le(subject) || subject || head. With one subject
        # (user u) the newest item's chain is that head, so the printed
        # chain must reproduce the printed anchor. Kills riskctl_out.c
        # chain hex `ch[i] >> 4` -> `ch[i] >> 3`.
        self.js('--now', T0, 'user', 'set', 'u')
        self.event('u', 'e1', 'high', T0_MS)
        items = self.js('history', 'u')
        self.assertEqual(len(items), 2)
        for it in items:
            self.assertRegex(it['chain'], r'^[0-9a-f]{64}$')
        head = bytes.fromhex(items[-1]['chain'])
        h = hashlib.sha256(b'librisk-anchor-1' + (1).to_bytes(4, 'little') + b'u' + head)
        a = self.js('anchor')
        self.assertEqual((a['seq'], a['subjects']), (items[-1]['seq'], 1))
        self.assertEqual(a['hash'], h.hexdigest())


class TestWhatIfPaging(Base):
    def test_page_cut_is_marked_and_named(self):
        # R-WI-1 paging in the human table: a group cut by --limit ends
        # with "…", a whole one does not, and the last line names the users
        # shown. Kills riskctl_audit.c `i - offset == limit` -> `> limit`
        # (test_cli.py already kills the last line's
        # `most - offset < limit ? most : offset + limit` -> `most`).
        for u in ('a', 'b', 'c'):
            self.js('user', 'set', u)
        args = ('policy', 'what-if', 'p', '--threshold', 'high', '--control', 'block',
                '--now', T0)
        out = self.ok(*args, '--limit', '2')
        self.assertRegex(out, r'allow +none +3 +a, b, …\n')
        self.assertIn('users 1–2 of each group shown', out)
        out = self.ok(*args, '--limit', '1', '--offset', '1')
        self.assertRegex(out, r'allow +none +3 +b, …\n')
        self.assertIn('users 2–2 of each group shown', out)
        out = self.ok(*args, '--limit', '3')
        self.assertRegex(out, r'allow +none +3 +a, b, c\n')
        self.assertIn('users 1–3 of each group shown', out)
        j = self.js(*args, '--limit', '1', '--offset', '1')
        self.assertEqual(j['results'][0]['users'], ['b'])

    def test_remove_takes_no_name(self):
        # `policy what-if --remove NAME` takes no other policy: a NAME
        # beside it is a usage error, not silently dropped. Kills
        # riskctl_audit.c `np != 0 || o[0].set ...` -> `o[0].set ...`.
        self.js('policy', 'set', 'q', '--threshold', 'high', '--control', 'block')
        out = self.refused('RISK_EINVAL', 'policy', 'what-if', 'p', '--remove', 'q', code=2)
        self.assertIn('takes no other policy options', out['message'])
        self.assertEqual(self.js('policy', 'what-if', '--remove', 'q')['policies'], [])


if __name__ == '__main__':
    if not RISKCTL:
        sys.exit('set RISKCTL to the riskctl program')
    unittest.main()
