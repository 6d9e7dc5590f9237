#!/usr/bin/env python3
"""Tests of riskctl, the administrator's command-line program (issue 6).

Each test runs the built program (path in $RISKCTL) on its own journal in a
temporary directory and checks exit statuses, --json output (parsed) and
that refused or invalid commands leave the journal byte for byte unchanged.
Every test names the SPEC rules it exercises through the program.
"""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

RISKCTL = os.environ.get('RISKCTL') or shutil.which('riskctl')

T0 = '2026-11-24T10:00:00Z'
T0_MS = 1795514400000
HOUR = 3600 * 1000
DAY = 24 * HOUR


def iso(ms):
    return str(ms)


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='riskctl-test-')
        self.store = os.path.join(self.tmp, 'data', 'risk.journal')
        self.env = dict(os.environ)
        for k in ('XDG_DATA_HOME', 'NO_COLOR', 'RISKCTL_STORE'):
            self.env.pop(k, None)
        self.env.update(RISKCTL_STORE=self.store, HOME=self.tmp, USER='tester')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_ctl(self, *args, stdin=None, env=None):
        p = subprocess.run([RISKCTL, *args], input=stdin, capture_output=True,
                           env=env or self.env, timeout=120)
        return p

    def ok(self, *args, **kw):
        """Run; expect exit 0; return stdout as text."""
        p = self.run_ctl(*args, **kw)
        self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p.stdout.decode()

    def js(self, *args, code=0, **kw):
        """Run with --json; expect exit `code` and exactly one JSON value."""
        p = self.run_ctl(*args, '--json', **kw)
        self.assertEqual(p.returncode, code, (args, p.stdout, p.stderr))
        return json.loads(p.stdout)

    def refused(self, error, *args, code=1, **kw):
        """Expect the library's refusal `error` (exit 1) or a usage error (2)."""
        out = self.js(*args, code=code, **kw)
        self.assertEqual(out['error'], error, out)
        self.assertLess(out['code'], 0)
        self.assertTrue(out['message'])
        p = self.run_ctl(*args, **kw)
        self.assertEqual(p.returncode, code)
        # stderr names the RISK_E code (exit 1) or says "usage" (exit 2).
        self.assertIn(error.encode() if code == 1 else b'usage', p.stderr)
        return out

    def digest(self):
        if not os.path.exists(self.store):
            return None
        with open(self.store, 'rb') as f:
            return hashlib.sha256(f.read()).hexdigest()

    def event(self, user, eid, level='high', at=None, typ='leakedCredentials', *extra):
        args = ['event', 'add', user, eid, typ, level]
        if at is not None:
            args += ['--at', str(at)]
        return self.js(*args, *extra)

    def start_importer(self):
        """`riskctl event import - --json` reading a pipe the test writes."""
        return subprocess.Popen([RISKCTL, 'event', 'import', '-', '--json'],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env)

    def end_importer(self, writer, last_line, ok):
        """Write the last line, close the input: the import ends well with ok lines."""
        writer.stdin.write(last_line)
        writer.stdin.close()
        self.assertEqual(writer.wait(60), 0, writer.stderr.read())
        self.assertEqual(json.loads(writer.stdout.read())['ok'], ok)

    @staticmethod
    def stop_importer(writer):
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        for f in (writer.stdin, writer.stdout, writer.stderr):
            f.close()


class TestGlobal(Base):
    def test_help_and_usage(self):
        self.assertIn('usage: riskctl', self.ok('help'))
        self.assertIn('usage: riskctl', self.ok('--help'))
        self.assertIn('riskctl', self.ok('--version'))
        self.assertEqual(self.run_ctl().returncode, 2)
        out = self.refused('RISK_EINVAL', 'frobnicate', code=2)
        self.assertIn('usage', out['message'])
        self.refused('RISK_EINVAL', 'user', 'show', code=2)          # missing USER
        self.refused('RISK_EINVAL', 'users', '--bogus', code=2)      # unknown option
        self.assertIsNone(self.digest())  # usage errors never create the store

    def test_options_before_or_after_command(self):
        other = os.path.join(self.tmp, 'other.journal')
        self.js('--store', other, '--now', T0, 'user', 'set', 'alice', '--mfa')
        u = self.js('user', 'show', 'alice', '--store', other)
        self.assertEqual(u['id'], 'alice')
        self.assertEqual(u['mfa_registered_at'], T0_MS)
        self.assertTrue(os.path.exists(other))
        self.assertIsNone(self.digest())

    def test_argument_edges(self):
        # `--` before the command ends the options, the command still runs;
        # a command group alone names what is missing; an empty --store is
        # a usage error (it used to fall back to an empty store for reads).
        self.event('a', 'e1', 'high', T0_MS)
        p = self.run_ctl('--json', '--', 'users', '--min-level', 'none')
        self.assertEqual(p.returncode, 2)  # after `--`, --min-level is an argument
        p = self.run_ctl('--json', '--', 'users')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([u['id'] for u in json.loads(p.stdout)], ['a'])
        out = self.refused('RISK_EINVAL', 'user', code=2)
        self.assertIn("'user' needs a subcommand", out['message'])
        self.refused('RISK_EINVAL', '--store', '', 'users', code=2)
        self.refused('RISK_EINVAL', '--store=', 'user', 'set', 'b', code=2)

    def test_actor_system_is_the_engines(self):
        # R-OP-0: `system` records the engine's own actions (aging); an
        # administrator cannot sign the history with it.
        self.event('u', 'e1', 'high', T0_MS)
        out = self.refused('RISK_EINVAL', '--actor', 'system', 'dismiss', 'u', code=2)
        self.assertIn("'system'", out['message'])
        self.assertEqual(self.js('user', 'show', 'u')['risk_state'], 'at_risk')

    def test_secure_change_that_does_not_count_says_so(self):
        # R-PO-11, R-PO-10: a "secure" change by a user whose MFA came after
        # the risk closes nothing; riskctl says why on stderr (it was silent).
        self.js('user', 'set', 'v', '--now', T0)
        self.event('v', 'e1', 'high', T0_MS + HOUR)
        self.js('user', 'set', 'v', '--mfa', '--now', str(T0_MS + 2 * HOUR))
        p = self.run_ctl('password-changed', 'v', '--secure')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b'registered MFA after the risk began', p.stderr)
        self.assertEqual(self.js('user', 'show', 'v')['risk_level'], 'high')
        self.js('user', 'set', 'm', '--mfa', '--now', T0)
        self.event('m', 'e2', 'high', T0_MS + HOUR)
        p = self.run_ctl('password-changed', 'm', '--secure')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(b'note', p.stderr)
        self.assertEqual(self.js('user', 'show', 'm')['risk_level'], 'none')

    def test_missing_journal_is_said_on_stderr(self):
        # A read of a mistyped path sees an empty store, and says so.
        other = os.path.join(self.tmp, 'typo', 'risk.journal')
        p = self.run_ctl('--store', other, 'users')
        self.assertEqual(p.returncode, 0)
        self.assertIn(b'no journal at', p.stderr)
        self.assertFalse(os.path.exists(other))
        self.js('user', 'set', 'a')
        self.assertNotIn(b'no journal', self.run_ctl('users').stderr)

    def test_commands_on_missing_records_create_no_journal(self):
        # A command that acts on records that must exist, run on a path
        # with no journal (a typo), fails with RISK_ENOTFOUND and creates no
        # directory, journal or key; so does a sign-in (unknown: allow).
        other = os.path.join(self.tmp, 'typo', 'risk.journal')
        for args in (['resolve', 'e1'], ['confirm-safe', 'u'],
                     ['reset-password', 'u', '--temporary'], ['policy', 'remove', 'p'],
                     ['password-changed', 'u', '--insecure']):
            self.refused('RISK_ENOTFOUND', '--store', other, *args)
        p = self.run_ctl('--store', other, 'dismiss', 'u')  # bulk: per-user results
        self.assertEqual(p.returncode, 1)
        self.assertIn(b'RISK_ENOTFOUND', p.stderr)
        self.assertEqual(self.js('--store', other, 'signin', 'u')['decision'], 'allow')
        self.assertEqual(self.js('--store', other, 'expire')['events'], 0)
        self.assertFalse(os.path.exists(os.path.dirname(other)))
        os.makedirs(os.path.dirname(other))  # in an existing directory: no key either
        self.refused('RISK_ENOTFOUND', '--store', other, 'resolve', 'e1')
        self.assertEqual(os.listdir(os.path.dirname(other)), [])
        self.js('--store', other, 'user', 'set', 'u')  # a command that creates does
        self.assertTrue(os.path.exists(other))

    def test_lost_output_is_a_failure(self):
        # Output that cannot be written (a full disk) exits 1; a temporary
        # password that was set but never shown says so (R-PW-1: shown once).
        if not os.path.exists('/dev/full'):
            self.skipTest('no /dev/full')
        self.js('user', 'set', 'a')
        with open('/dev/full', 'w') as full:
            p = subprocess.run([RISKCTL, 'reset-password', 'a', '--temporary'], stdout=full,
                               stderr=subprocess.PIPE, env=self.env, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b'temporary password was set but not shown', p.stderr)
        self.assertTrue(self.js('user', 'show', 'a')['must_change_password'])
        with open('/dev/full', 'w') as full:
            p = subprocess.run([RISKCTL, 'users', '--json'], stdout=full,
                               stderr=subprocess.PIPE, env=self.env, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)

    def test_now_accepts_ms_and_iso_with_millis(self):
        self.js('--now', str(T0_MS + 5), 'user', 'set', 'a', '--mfa')
        self.assertEqual(self.js('user', 'show', 'a')['mfa_registered_at'], T0_MS + 5)
        self.js('user', 'set', 'b', '--mfa', '--now', '2026-11-24T10:00:00.250Z')
        self.assertEqual(self.js('user', 'show', 'b')['mfa_registered_at'], T0_MS + 250)

    def test_now_after_year_9999_reads_back_as_printed(self):
        far = 253402300800000 + 1500  # 10000-01-01T00:00:01.500Z
        self.js('--now', str(far), 'user', 'set', 'a', '--mfa')
        shown = self.ok('user', 'show', 'a')
        self.assertIn('10000-01-01T00:00:01.500Z', shown)
        self.js('user', 'set', 'b', '--mfa', '--now', '10000-01-01T00:00:01.500Z')
        self.assertEqual(self.js('user', 'show', 'b')['mfa_registered_at'], far)
        self.js('user', 'set', 'c', '--mfa', '--now', '287396-10-12T08:59:00Z')
        for bad in ('09999-01-01T00:00:00Z', '1000000-01-01T00:00:00Z',
                    '287396-10-12T08:59:01Z', '10000-01-01T00:00:00'):
            self.refused('RISK_EINVAL', 'user', 'show', 'a', '--now', bad, code=2)

    def test_default_store_paths(self):
        env = dict(self.env)
        del env['RISKCTL_STORE']
        xdg = os.path.join(self.tmp, 'xdg')
        env['XDG_DATA_HOME'] = xdg
        self.assertEqual(self.run_ctl('user', 'set', 'a', env=env).returncode, 0)
        path = os.path.join(xdg, 'librisk', 'risk.journal')
        self.assertTrue(os.path.exists(path))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        del env['XDG_DATA_HOME']
        self.assertEqual(self.run_ctl('user', 'set', 'a', env=env).returncode, 0)
        path = os.path.join(self.tmp, '.local', 'share', 'librisk', 'risk.journal')
        self.assertTrue(os.path.exists(path))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_memory_store_keeps_nothing(self):
        self.js('--memory', 'user', 'set', 'a')
        self.assertIsNone(self.digest())
        self.refused('RISK_ENOTFOUND', '--memory', 'user', 'show', 'a')

    def test_read_command_on_missing_journal_is_empty(self):
        self.assertEqual(self.js('users'), [])
        self.assertEqual(self.js('policy', 'list'), [])
        self.assertIsNone(self.digest())  # a read never creates the journal

    def test_actor_default_and_option(self):
        # R-OP-0: the actor is recorded in closed_by and the history.
        self.event('a', 'e1', 'low')
        self.event('a', 'e2', 'low')
        self.js('resolve', 'e1')
        self.js('resolve', 'e2', '--actor', 'admin@example')
        self.assertEqual(self.js('event', 'show', 'e1')['closed_by'], 'tester')
        self.assertEqual(self.js('event', 'show', 'e2')['closed_by'], 'admin@example')
        actors = [h['actor'] for h in self.js('history', 'a')]
        self.assertEqual(actors[-1], 'admin@example')

    def test_no_colour_when_not_a_terminal(self):
        self.event('a', 'e1', 'high')
        out = self.ok('users')
        self.assertNotIn('\033[', out)
        self.assertIn('USER', out)
        self.assertIn('high', out)


class TestUsers(Base):
    def test_user_set_creates_and_upserts(self):
        # R-OP-4: upsert changes only mfa_registered and deleted.
        u = self.js('user', 'set', 'alice', '--now', T0)
        self.assertEqual(u['id'], 'alice')
        self.assertFalse(u['mfa_registered'])
        self.assertIsNone(u['mfa_registered_at'])
        for k in ('id', 'mfa_registered', 'mfa_registered_at', 'deleted', 'must_change_password',
                  'remediated_at', 'reset_required', 'risk_level', 'risk_state', 'risk_detail',
                  'risk_updated_at'):
            self.assertIn(k, u)
        u = self.js('user', 'set', 'alice', '--mfa', '--now', T0)
        self.assertTrue(u['mfa_registered'])
        self.assertEqual(u['mfa_registered_at'], T0_MS)  # --mfa registers at --now (R-PO-11)
        u = self.js('user', 'set', 'alice', '--deleted', '--now', str(T0_MS + HOUR))
        self.assertTrue(u['deleted'])
        self.assertTrue(u['mfa_registered'])             # untouched flag kept
        self.assertEqual(u['mfa_registered_at'], T0_MS)
        u = self.js('user', 'set', 'alice', '--not-deleted', '--no-mfa')
        self.assertFalse(u['deleted'])
        self.assertFalse(u['mfa_registered'])
        self.refused('RISK_EINVAL', 'user', 'set', 'alice', '--mfa', '--no-mfa', code=2)

    def test_user_show(self):
        self.event('bob', 'e1', 'medium', T0_MS)
        u = self.js('user', 'show', 'bob', '--now', T0)
        self.assertEqual((u['risk_level'], u['risk_state'], u['risk_detail']),
                         ('medium', 'at_risk', 'none'))   # R-US-1
        self.assertEqual(u['active_events'], 1)
        self.assertIn('risk state', self.ok('user', 'show', 'bob'))
        self.refused('RISK_ENOTFOUND', 'user', 'show', 'nobody')

    def test_table_columns_align_by_display_width(self):
        # Wide (CJK) and combining characters take 2 and 0 terminal columns:
        # the LEVEL column starts at the same column on every row.
        import unicodedata

        def cols(text):
            return sum(0 if unicodedata.combining(ch) else
                       2 if unicodedata.east_asian_width(ch) in 'WF' else 1 for ch in text)
        for uid in ('用户甲', 'e\u0301\u0301x', 'bob'):
            self.ok('event', 'add', uid, 'ev-' + str(len(uid)) + uid[-1],
                    'leakedCredentials', 'high', '--at', T0, '--now', T0)
        lines = self.ok('users').splitlines()
        starts = {cols(line[:line.index(word)])
                  for line in lines for word in ('LEVEL', 'high') if word in line}
        self.assertEqual(len(starts), 1, '\n'.join(lines))

    def test_users_order_and_min_level(self):
        # R-OP-5: users at or above a level, highest first, then by id.
        self.event('c', 'c1', 'low')
        self.event('b', 'b1', 'high')
        self.event('a', 'a1', 'high')
        self.event('d', 'd1', 'medium')
        self.js('user', 'set', 'z')
        ids = [u['id'] for u in self.js('users')]
        self.assertEqual(ids, ['a', 'b', 'd', 'c'])     # default low: z (none) left out
        ids = [u['id'] for u in self.js('users', '--min-level', 'high')]
        self.assertEqual(ids, ['a', 'b'])
        ids = [u['id'] for u in self.js('users', '--min-level', 'none')]
        self.assertEqual(ids[-1], 'z')
        self.refused('RISK_EINVAL', 'users', '--min-level', 'severe', code=2)


class TestEvents(Base):
    def test_event_add_fields(self):
        # R-EV-1: a new event is active with close_reason none.
        e = self.js('event', 'add', 'alice', 'e1', 'leakedCredentials', 'high',
                    '--at', T0, '--offline', '--ip', '203.0.113.9',
                    '--location', 'Zürich, CH', '--source', 'idp-1')
        self.assertEqual(e, {
            'id': 'e1', 'user_id': 'alice', 'type': 'leakedCredentials', 'level': 'high',
            'detected_at': T0_MS, 'timing': 'offline', 'ip': '203.0.113.9',
            'location': 'Zürich, CH', 'source': 'idp-1', 'state': 'active',
            'close_reason': 'none', 'closed_at': None, 'closed_by': None, 'note': None})
        self.assertEqual(self.js('event', 'show', 'e1'), e)
        self.assertIn('leakedCredentials', self.ok('event', 'show', 'e1'))
        self.refused('RISK_ENOTFOUND', 'event', 'show', 'nope')

    def test_event_add_defaults_to_now(self):
        e = self.js('event', 'add', 'a', 'e1', 'x', 'low', '--now', T0)
        self.assertEqual(e['detected_at'], T0_MS)
        self.assertEqual(e['timing'], 'realtime')

    def test_idempotent_ingest_and_update(self):
        # R-OP-1: same event again is OK and changes nothing; a different
        # event under a taken id is RISK_EEXISTS.
        self.event('a', 'e1', 'low', T0_MS)
        before = self.digest()
        self.event('a', 'e1', 'low', T0_MS)
        self.assertEqual(len(self.js('history', 'a')), 1)
        self.refused('RISK_EEXISTS', 'event', 'add', 'a', 'e1', 'leakedCredentials', 'high',
                     '--at', str(T0_MS))
        # R-OP-7: --update changes an active event and rescoring follows.
        e = self.js('event', 'add', 'a', 'e1', 'leakedCredentials', 'high', '--at', str(T0_MS),
                    '--update')
        self.assertEqual(e['level'], 'high')
        self.assertEqual(self.js('user', 'show', 'a')['risk_level'], 'high')
        self.assertEqual(self.js('history', 'a')[-1]['action'], 'event_updated')
        self.assertNotEqual(before, self.digest())
        # A closed event is never updated (R-OP-7).
        self.js('resolve', 'e1')
        self.refused('RISK_ETRANSITION', 'event', 'add', 'a', 'e1', 'leakedCredentials',
                     'medium', '--at', str(T0_MS), '--update')

    def test_update_without_at_keeps_detected_at(self):
        # R-OP-7, R-PO-11: --update without --at changes the level, not when
        # the risk began; MFA registered after it still does not count.
        self.event('alice', 'leak-1', 'high', T0_MS)
        self.js('user', 'set', 'alice', '--mfa', '--now', str(T0_MS + HOUR))
        self.js('policy', 'set', 'p', '--threshold', 'medium', '--control',
                'require_password_change')
        v = self.js('signin', 'alice', '--now', str(T0_MS + 2 * HOUR))
        self.assertEqual(v['reason'], 'mfa_registered_during_risk')
        e = self.js('event', 'add', 'alice', 'leak-1', 'leakedCredentials', 'medium',
                    '--update', '--now', str(T0_MS + 3 * HOUR))
        self.assertEqual((e['level'], e['detected_at']), ('medium', T0_MS))
        v = self.js('signin', 'alice', '--now', str(T0_MS + 4 * HOUR))
        self.assertEqual((v['decision'], v['reason']), ('block', 'mfa_registered_during_risk'))
        # R-OP-1: the same detection again without --at is the same event.
        before = self.digest()
        e = self.js('event', 'add', 'alice', 'leak-1', 'leakedCredentials', 'medium',
                    '--now', str(T0_MS + 5 * HOUR))
        self.assertEqual(e['detected_at'], T0_MS)
        self.assertEqual(before, self.digest())
        # A new id without --at is detected at --now.
        e = self.js('event', 'add', 'alice', 'leak-2', 'leakedCredentials', 'low',
                    '--now', str(T0_MS + 5 * HOUR))
        self.assertEqual(e['detected_at'], T0_MS + 5 * HOUR)

    def test_events_order_and_active(self):
        # R-OP-5: a user's events by detected_at, then id.
        self.event('a', 'e3', 'low', T0_MS + 2)
        self.event('a', 'e2', 'low', T0_MS + 1)
        self.event('a', 'e1', 'low', T0_MS + 2)
        self.assertEqual([e['id'] for e in self.js('events', 'a')], ['e2', 'e1', 'e3'])
        self.js('resolve', 'e1')
        self.assertEqual([e['id'] for e in self.js('events', 'a', '--active')], ['e2', 'e3'])
        self.assertEqual(self.js('events', 'nobody'), [])
        self.assertIn('EVENT', self.ok('events', 'a'))


    def test_human_output_escapes_what_a_terminal_would_act_on(self):
        # Security review: detection fields may hold C1 controls (U+009B
        # starts an escape sequence), bidi overrides and zero-width
        # characters, and notes line breaks; the human output writes them
        # \uXXXX (it printed them raw: a note could fake lines), --json
        # keeps them as stored.
        ip = '10.0.0.1\u009b2J'
        self.event('mallory', 'e1', 'high', T0_MS, 'unfamiliarFeatures', '--ip', ip,
                   '--location', 'Paris\u202eLAER\u200b')
        self.js('ignore', 'e1', '--note', 'fine\nclosed_by       ciso')
        out = self.ok('event', 'show', 'e1')
        for raw in ('\u009b', '\u202e', '\u200b'):
            self.assertNotIn(raw, out)
        self.assertIn('10.0.0.1\\u009b2J', out)
        self.assertIn('Paris\\u202eLAER\\u200b', out)
        self.assertIn('fine\\u000aclosed_by', out)
        self.assertNotIn('\nclosed_by       ciso', out)
        table = self.ok('events', 'mallory')
        self.assertNotIn('\u009b', table)
        e = self.js('event', 'show', 'e1')
        self.assertEqual((e['ip'], e['note']), (ip, 'fine\nclosed_by       ciso'))


class TestClosing(Base):
    def test_manual_closing_and_reactivation(self):
        # R-EV-2, R-EV-3, R-IN-1: each close records reason, actor, time, note.
        self.event('a', 'e1', 'high', T0_MS)
        self.event('a', 'e2', 'medium', T0_MS)
        self.event('a', 'e3', 'low', T0_MS)
        now = str(T0_MS + HOUR)
        e = self.js('resolve', 'e1', '--note', 'reimaged', '--now', now)
        self.assertEqual((e['state'], e['close_reason'], e['closed_at'], e['closed_by'],
                          e['note']), ('closed', 'resolved', T0_MS + HOUR, 'tester', 'reimaged'))
        self.assertEqual(self.js('false-positive', 'e2')['close_reason'], 'false_positive')
        self.assertEqual(self.js('user', 'show', 'a')['risk_level'], 'low')
        # R-EV-2: ignore needs a non-empty note; nothing changes without one.
        before = self.digest()
        self.refused('RISK_EINVAL', 'ignore', 'e3')
        self.refused('RISK_EINVAL', 'ignore', 'e3', '--note', '')
        self.assertEqual(before, self.digest())
        self.assertEqual(self.js('ignore', 'e3', '--note', 'red team')['close_reason'], 'ignored')
        u = self.js('user', 'show', 'a')
        self.assertEqual((u['risk_level'], u['risk_state'], u['risk_detail']),
                         ('none', 'none', 'admin_closed_events'))  # R-US-2
        # R-EV-3: reactivate a manually closed event; the level goes up.
        e = self.js('reactivate', 'e1')
        self.assertEqual((e['state'], e['close_reason'], e['closed_at'], e['closed_by']),
                         ('active', 'none', None, None))
        self.assertEqual(self.js('user', 'show', 'a')['risk_level'], 'high')
        # R-EV-5: closing a closed event, reactivating an active one.
        before = self.digest()
        self.refused('RISK_ETRANSITION', 'resolve', 'e2')
        self.refused('RISK_ETRANSITION', 'reactivate', 'e1')
        self.assertEqual(before, self.digest())
        self.refused('RISK_ENOTFOUND', 'resolve', 'nope')
        self.assertIn('resolved', self.ok('resolve', 'e1'))

    def test_remediated_event_cannot_be_reactivated(self):
        # R-EV-4: closed through remediation → never reactivated.
        self.js('user', 'set', 'a', '--mfa', '--now', T0)
        self.event('a', 'e1', 'high', T0_MS + HOUR)
        self.js('password-changed', 'a', '--secure', '--now', str(T0_MS + 2 * HOUR))
        self.assertEqual(self.js('event', 'show', 'e1')['close_reason'], 'remediated')
        before = self.digest()
        self.refused('RISK_ETRANSITION', 'reactivate', 'e1')
        self.assertEqual(before, self.digest())

    def test_dismiss_bulk(self):
        # R-DI-1, R-DI-4: each user atomic on its own, per-user results.
        self.event('a', 'a1', 'high')
        self.event('a', 'a2', 'low')
        self.event('b', 'b1', 'medium')
        out = self.js('dismiss', 'a', 'b', 'ghost', '--note', 'deleted accounts', code=1)
        self.assertEqual((out['ok'], out['failed']), (2, 1))
        r = {x['user_id']: x for x in out['results']}
        self.assertEqual((r['a']['ok'], r['a']['changed'], r['a']['error']), (True, 2, None))
        self.assertEqual(r['b']['changed'], 1)
        self.assertEqual((r['ghost']['ok'], r['ghost']['error']), (False, 'RISK_ENOTFOUND'))
        u = self.js('user', 'show', 'a')
        self.assertEqual((u['risk_level'], u['risk_state'], u['risk_detail']),
                         ('none', 'dismissed', 'admin_dismissed_all_risk'))
        self.assertEqual(self.js('event', 'show', 'a1')['close_reason'], 'dismissed')
        # R-DI-3: no active events → success, 0 closed.
        out = self.js('dismiss', 'a')
        self.assertEqual((out['ok'], out['failed'], out['results'][0]['changed']), (1, 0, 0))
        # R-EV-4: dismissed events are not reactivatable.
        self.refused('RISK_ETRANSITION', 'reactivate', 'a1')
        # An invalid id fails on its own; the others still apply.
        self.event('c', 'c1', 'low')
        out = self.js('dismiss', 'c', b'bad\xffid', code=1)
        self.assertEqual((out['ok'], out['failed']), (1, 1))
        self.assertEqual(out['results'][1]['error'], 'RISK_EINVAL')
        self.assertIn('dismissed', self.ok('dismiss', 'c'))

    def test_dismiss_only_invalid_ids_opens_nothing(self):
        # R-IV-1, R-DI-4: each invalid id fails on its own; with no valid id
        # there is nothing to do, so the store (and its key) is not created.
        out = self.js('dismiss', '', b'bad\xffid', code=1)
        self.assertEqual((out['ok'], out['failed']), (0, 2))
        self.assertEqual([r['error'] for r in out['results']], ['RISK_EINVAL'] * 2)
        self.assertIsNone(self.digest())
        self.assertFalse(os.path.exists(self.store + '.key'))
        self.assertFalse(os.path.exists(os.path.dirname(self.store)))

    def test_dismiss_deleted_user(self):
        # R-DI-2: dismiss works for deleted users (the seed's preferred case).
        self.event('d', 'd1', 'high')
        self.js('user', 'set', 'd', '--deleted')
        self.assertEqual(self.js('signin', 'd')['reason'], 'user_deleted')  # R-PO-6
        self.assertEqual(self.js('dismiss', 'd')['ok'], 1)
        self.assertEqual(self.js('user', 'show', 'd')['risk_state'], 'dismissed')

    def test_confirm_compromised_and_safe(self):
        # R-US-3, R-SC-5: confirm compromised → high via an engine event.
        self.js('user', 'set', 'a')
        u = self.js('confirm-compromised', 'a')
        self.assertEqual((u['risk_level'], u['risk_state'], u['risk_detail']),
                         ('high', 'confirmed_compromised', 'admin_confirmed_compromised'))
        ev = self.js('events', 'a')
        self.assertEqual(ev[0]['type'], 'adminConfirmedUserCompromised')
        self.refused('RISK_ETRANSITION', 'resolve', ev[0]['id'])      # R-EV-8
        self.refused('RISK_ETRANSITION', 'confirm-safe', 'a')        # R-US-3
        # R-US-4: confirm safe closes active events as false positive.
        self.event('b', 'b1', 'medium')
        u = self.js('confirm-safe', 'b')
        self.assertEqual((u['risk_level'], u['risk_state'], u['risk_detail']),
                         ('none', 'confirmed_safe', 'admin_confirmed_safe'))
        self.assertEqual(self.js('event', 'show', 'b1')['close_reason'], 'false_positive')
        self.refused('RISK_ENOTFOUND', 'confirm-compromised', 'ghost')


class TestPasswords(Base):
    def test_temporary_password(self):
        # R-PW-1: printed once, must_change_password, events remediated.
        self.event('a', 'e1', 'high')
        out = self.js('reset-password', 'a', '--temporary')
        pw = out['temporary_password']
        self.assertGreaterEqual(len(pw), 12)
        u = out['user']
        self.assertTrue(u['must_change_password'])
        self.assertEqual((u['risk_level'], u['risk_state'], u['risk_detail']),
                         ('none', 'remediated', 'admin_generated_temporary_password'))
        with open(self.store, 'rb') as f:
            self.assertNotIn(pw.encode(), f.read())  # never stored
        v = self.js('signin', 'a')                  # R-PO-7
        self.assertEqual((v['decision'], v['reason']),
                         ('require_password_change', 'temporary_password'))
        self.assertIn('shown once', self.ok('reset-password', 'a', '--temporary'))
        # R-PO-10: a change without MFA proof clears must_change_password.
        u = self.js('password-changed', 'a', '--insecure')
        self.assertFalse(u['must_change_password'])
        self.assertEqual(self.js('signin', 'a')['decision'], 'allow')
        self.refused('RISK_EINVAL', 'reset-password', 'a', code=2)
        self.refused('RISK_EINVAL', 'reset-password', 'a', '--temporary', '--require', code=2)

    def test_require_reset(self):
        # R-PW-2: only for MFA-registered users; nothing changes otherwise.
        self.event('nomfa', 'n1', 'high')
        before = self.digest()
        self.refused('RISK_ENOMFA', 'reset-password', 'nomfa', '--require')
        self.assertEqual(before, self.digest())
        self.js('user', 'set', 'm', '--mfa', '--now', T0)
        self.event('m', 'm1', 'medium', T0_MS + HOUR)
        u = self.js('reset-password', 'm', '--require')
        self.assertTrue(u['reset_required'])
        self.assertEqual(u['risk_state'], 'at_risk')   # events stay active
        v = self.js('signin', 'm')
        self.assertEqual((v['decision'], v['reason']), ('require_password_change',
                                                         'reset_required'))
        u = self.js('password-changed', 'm', '--secure', '--reset')
        self.assertEqual((u['risk_state'], u['risk_detail'], u['reset_required']),
                         ('remediated', 'user_performed_secured_password_reset', False))
        # R-PW-3: refused for a deleted user.
        self.js('user', 'set', 'm', '--deleted')
        self.refused('RISK_EDELETED', 'reset-password', 'm', '--require')
        self.refused('RISK_EDELETED', 'reset-password', 'm', '--temporary')

    def test_password_changed(self):
        # R-PO-10: a secure change closes all active events as remediated.
        self.js('user', 'set', 'a', '--mfa', '--now', T0)
        self.event('a', 'e1', 'high', T0_MS + HOUR)
        self.event('a', 'e2', 'low', T0_MS + HOUR)
        u = self.js('password-changed', 'a', '--secure', '--now', str(T0_MS + 2 * HOUR))
        self.assertEqual((u['risk_level'], u['risk_state'], u['risk_detail'],
                          u['remediated_at']),
                         ('none', 'remediated', 'user_performed_secured_password_change',
                          T0_MS + 2 * HOUR))
        self.refused('RISK_EINVAL', 'password-changed', 'a', code=2)
        self.refused('RISK_EINVAL', 'password-changed', 'a', '--reset', code=2)
        self.refused('RISK_EINVAL', 'password-changed', 'a', '--secure', '--insecure', code=2)
        self.refused('RISK_ENOTFOUND', 'password-changed', 'ghost', '--secure')


class TestPolicies(Base):
    def test_long_lists_are_marked_cut_in_the_table(self):
        # The human table cuts a long include/exclude list with "… (+N more)"
        # (it cut it silently, and the last excluded user vanished); JSON
        # keeps every id.
        inc = ['user-number-%03d@contoso.example' % i for i in range(100)]
        self.js('policy', 'set', 'p', '--threshold', 'high', '--control', 'block',
                '--include', ','.join(inc), '--exclude', ','.join(inc[:50] + ['zz-mallory']))
        self.assertEqual(len(self.js('policy', 'list')[0]['include']), 100)
        table = self.ok('policy', 'list')
        self.assertRegex(table, r'… \(\+\d+ more\)')
        self.assertEqual(table.count('more)'), 2)

    def test_policy_set_list_remove(self):
        # R-OP-6: policies added, replaced, removed; each in the history.
        p = self.js('policy', 'set', 'p1', '--threshold', 'medium', '--control', 'block',
                    '--include', 'a,b', '--exclude', 'b')
        self.assertEqual(p, {'name': 'p1', 'mode': 'on', 'threshold': 'medium',
                             'control': 'block', 'include': ['a', 'b'], 'exclude': ['b']})
        self.js('policy', 'set', 'p0', '--threshold', 'high', '--control',
                'require_password_change', '--mode', 'report_only')
        lst = self.js('policy', 'list')
        self.assertEqual([x['name'] for x in lst], ['p0', 'p1'])
        self.assertIsNone(lst[0]['include'])  # no --include: all users
        self.assertIn('p1', self.ok('policy', 'list'))
        self.assertEqual(self.js('policy', 'remove', 'p1')['name'], 'p1')
        self.assertEqual([x['name'] for x in self.js('policy', 'list')], ['p0'])
        self.refused('RISK_ENOTFOUND', 'policy', 'remove', 'p1')
        feed = [h['action'] for h in self.js('history', '--all')]
        self.assertEqual(feed, ['policy_set', 'policy_set', 'policy_remove'])
        self.refused('RISK_EINVAL', 'policy', 'set', 'x', '--threshold', 'none', '--control',
                     'block', code=2)
        self.refused('RISK_EINVAL', 'policy', 'set', 'x', '--threshold', 'high', '--control',
                     'lock', code=2)
        self.refused('RISK_EINVAL', 'policy', 'set', 'x', '--threshold', 'high', '--control',
                     'block', '--mode', 'maybe', code=2)
        self.refused('RISK_EINVAL', 'policy', 'set', 'x', '--threshold', 'high', code=2)

    def test_signin_verdicts(self):
        self.js('policy', 'set', 'chg', '--threshold', 'high', '--control',
                'require_password_change')
        self.js('policy', 'set', 'watch', '--threshold', 'low', '--control', 'block',
                '--mode', 'report_only')
        self.js('user', 'set', 'm', '--mfa', '--now', T0)
        self.event('m', 'm1', 'high', T0_MS + HOUR)
        self.event('n', 'n1', 'high', T0_MS + HOUR)
        # R-PO-2: MFA user → require_password_change; not MFA → block.
        v = self.js('signin', 'm')
        self.assertEqual((v['user_id'], v['decision'], v['reason'], v['policy'], v['level']),
                         ('m', 'require_password_change', 'risk_level', 'chg', 'high'))
        # R-PO-4: report-only policies are reported, never enforced.
        self.assertEqual(v['report_only'], [{'policy': 'watch', 'decision': 'block',
                                             'reason': 'risk_level'}])
        v = self.js('signin', 'n')
        self.assertEqual((v['decision'], v['reason']), ('block', 'not_mfa_registered'))
        # R-PO-11: MFA registered during risk does not count.
        self.js('user', 'set', 'n', '--mfa', '--now', str(T0_MS + 2 * HOUR))
        self.assertEqual(self.js('signin', 'n')['reason'], 'mfa_registered_during_risk')
        # R-PO-8: a user unknown to the store is allowed at level none.
        v = self.js('signin', 'stranger')
        self.assertEqual((v['decision'], v['reason'], v['policy'], v['level']),
                         ('allow', 'none', None, 'none'))
        self.assertIn('require_password_change', self.ok('signin', 'm'))


class TestExplainHistoryMaintenance(Base):
    def test_explain(self):
        # R-SC-6: which events counted, each one's contribution, aging.
        self.event('a', 'e1', 'low', T0_MS)
        self.event('a', 'e2', 'medium', T0_MS)
        self.js('resolve', 'e2')
        ex = self.js('explain', 'a', '--now', str(T0_MS + DAY))
        self.assertEqual((ex['user_id'], ex['level'], ex['score'], ex['counted']),
                         ('a', 'low', 1, 1))
        items = {i['event_id']: i for i in ex['events']}
        self.assertEqual((items['e1']['counted'], items['e1']['contribution']), (True, 1))
        self.assertEqual(items['e1']['ages_at'], T0_MS + 180 * DAY)   # R-SC-2 default
        self.assertFalse(items['e2']['counted'])
        self.assertIn('counted', self.ok('explain', 'a'))
        self.refused('RISK_ENOTFOUND', 'explain', 'ghost')
        # past its period, e1 is shown closed, as `events` shows it at that
        # time (aging has not written it yet: nothing was written)
        later = str(T0_MS + 181 * DAY)
        ex = self.js('explain', 'a', '--now', later)
        e1 = {i['event_id']: i for i in ex['events']}['e1']
        self.assertEqual((e1['state'], e1['aged'], e1['counted']), ('closed', True, False))
        (ev,) = [e for e in self.js('events', 'a', '--now', later) if e['id'] == 'e1']
        self.assertEqual(ev['state'], e1['state'])
        row = [l for l in self.ok('explain', 'a', '--now', later).splitlines()
               if l.startswith('e1 ')]
        self.assertEqual(row[0].split()[3], 'closed')

    def test_history_user_and_feed(self):
        # R-OP-5: a user's history in order; the store-wide feed from a seq on.
        self.event('a', 'e1', 'high', T0_MS)
        self.event('b', 'f1', 'low', T0_MS)
        self.js('resolve', 'e1', '--note', 'n')
        h = self.js('history', 'a')
        self.assertEqual([x['action'] for x in h], ['ingest', 'resolve'])
        for k in ('seq', 'at', 'actor', 'action', 'user_id', 'event_id', 'level_before',
                  'level_after', 'state_before', 'state_after', 'changed', 'note'):
            self.assertIn(k, h[0])
        self.assertEqual((h[1]['level_before'], h[1]['level_after'], h[1]['changed'],
                          h[1]['note']), ('high', 'none', 1, 'n'))
        feed = self.js('history', '--all')
        seqs = [x['seq'] for x in feed]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(set(seqs)), 3)
        tail = self.js('history', '--all', '--since', str(seqs[1]))
        self.assertEqual([x['seq'] for x in tail], seqs[1:])
        self.assertIn('ingest', self.ok('history', 'a'))
        self.refused('RISK_EINVAL', 'history', code=2)
        self.refused('RISK_EINVAL', 'history', '--all', '--since', 'ten', code=2)
        # digits only: strtoull's sign and leading space are not numbers here
        for bad in ('+1', ' 1', '-1', '1 ', '18446744073709551616'):
            self.refused('RISK_EINVAL', 'history', '--all', '--since', bad, code=2)
        self.assertEqual(self.js('history', '--all', '--since', '18446744073709551615'), [])
        self.refused('RISK_EINVAL', 'history', 'a', '--since', '1', code=2)
        # a policy change has no user: the policy is named as such, not as user 'a'
        self.ok('policy', 'set', 'a', '--threshold', 'high', '--control', 'block')
        rows = [r.split() for r in self.ok('history', '--all').splitlines()[1:]]
        pol = [r for r in rows if r[3] == 'policy_set']
        self.assertEqual([r[4:7] for r in pol], [['-', 'policy', 'a']])

    def test_expire(self):
        # R-SC-2: a low event ages out after 180 days (actor system).
        self.event('a', 'e1', 'low', T0_MS)
        self.event('a', 'e2', 'high', T0_MS)
        out = self.js('expire', '--now', str(T0_MS + 181 * DAY))
        self.assertEqual((out['users'], out['events']), (1, 1))
        e = self.js('event', 'show', 'e1')
        self.assertEqual((e['close_reason'], e['closed_by']), ('aged', 'system'))
        self.assertEqual(self.js('event', 'show', 'e2')['state'], 'active')  # high never ages
        self.assertEqual(self.js('expire')['events'], 0)
        self.assertIn('aging closed', self.ok('expire'))

    def test_check_compact_backup(self):
        self.event('a', 'e1', 'high', T0_MS)
        self.js('resolve', 'e1')
        self.js('reactivate', 'e1')
        chk = self.js('check')
        self.assertTrue(chk['ok'])
        self.assertEqual(chk['bytes_dropped'], 0)
        self.assertGreater(chk['records'], 0)
        self.assertIn('ok', self.ok('check'))
        users_before = self.js('users')
        hist_before = self.js('history', '--all')
        backup = os.path.join(self.tmp, 'copy.journal')
        self.assertTrue(self.js('backup', backup)['ok'])
        self.assertEqual(self.js('users', '--store', backup), users_before)
        self.assertTrue(self.js('compact')['ok'])
        self.assertEqual(self.js('users'), users_before)
        self.assertEqual(self.js('history', '--all'), hist_before)
        self.assertTrue(self.js('check')['ok'])
        self.refused('RISK_ENOTFOUND', 'check', '--store', os.path.join(self.tmp, 'none'))

    def test_check_anchor(self):
        # R-AU-2, R-AU-3: check verifies every chain and against an anchor
        # kept elsewhere; a different anchor is RISK_EVERIFY.
        self.event('a', 'e1', 'high', T0_MS)
        anchor = self.js('check')['anchor']
        self.assertTrue(anchor.startswith('librisk-anchor 1 '))
        self.event('b', 'e2', 'low', T0_MS)
        self.assertTrue(self.js('check', '--anchor', anchor)['ok'])   # items added after
        parts = anchor.split()
        parts[-1] = ('0' if parts[-1][0] != '0' else '1') + parts[-1][1:]
        self.refused('RISK_EVERIFY', 'check', '--anchor', ' '.join(parts))
        self.refused('RISK_EINVAL', 'check', '--anchor', 'not an anchor', code=2)

    def test_check_torn_tail(self):
        # R-CC-3, R-AU-3: a torn tail is not what was committed: check fails
        # and names the byte offset; a read still opens without it.
        self.event('a', 'e1', 'high', T0_MS)
        good = os.path.getsize(self.store)
        self.event('a', 'e2', 'low', T0_MS)
        size = os.path.getsize(self.store)
        with open(self.store, 'r+b') as f:
            f.truncate(size - 3)
        before = self.digest()
        out = self.refused('RISK_ECORRUPT', 'check')
        self.assertIn('torn tail', out['message'])
        self.assertIn('byte offset %d' % good, out['message'])
        self.assertEqual(self.digest(), before)            # check never truncates
        self.assertEqual([e['id'] for e in self.js('events', 'a')], ['e1'])

    def test_check_empty_or_torn_header_fails(self):
        # An empty file has no header: like a torn one (a crash while the
        # file was made), it is not what was committed: check fails and
        # leaves it as it is (it passed an empty file before).
        os.makedirs(os.path.dirname(self.store), exist_ok=True)
        for content in (b'', b'RISKJNL\0xx'):
            with open(self.store, 'wb') as f:
                f.write(content)
            out = self.refused('RISK_ECORRUPT', 'check')
            self.assertIn('byte offset 0', out['message'])
            with open(self.store, 'rb') as f:
                self.assertEqual(f.read(), content)

    def test_check_errors_always_carry_seq(self):
        # R-AU-2: every check failure names the history item or says null.
        out = self.refused('RISK_ENOTFOUND', 'check')              # no journal
        self.assertIn('seq', out)
        self.assertIsNone(out['seq'])
        self.event('a', 'e1', 'high', T0_MS)
        self.event('a', 'e2', 'low', T0_MS)
        with open(self.store, 'r+b') as f:
            f.truncate(os.path.getsize(self.store) - 3)
        out = self.refused('RISK_ECORRUPT', 'check')               # torn tail
        self.assertIn('seq', out)
        self.assertIsNone(out['seq'])
        out = self.refused('RISK_EINVAL', 'check', '--anchor', 'x', code=2)
        self.assertIsNone(out['seq'])

    def test_check_damaged_frame(self):
        # R-IV-2: damage before the tail (a valid frame follows) is corrupt.
        for i in range(4):
            self.event('a', 'e%d' % i, 'low', T0_MS)
        with open(self.store, 'r+b') as f:
            data = bytearray(f.read())
            mid = len(data) // 2
            data[mid] ^= 0xFF
            f.seek(0)
            f.write(data)
        self.refused('RISK_ECORRUPT', 'check')


class TestBadInput(Base):
    def test_bad_input_leaves_store_unchanged(self):
        # R-IV-1: invalid arguments are refused and nothing changes.
        self.event('a', 'e1', 'medium', T0_MS)
        before = self.digest()
        long_id = 'x' * 257
        cases = [
            (2, ['--now', '2026-11-24 10:00', 'user', 'set', 'a', '--mfa']),
            (2, ['--now', '2026-02-30T00:00:00Z', 'user', 'set', 'a', '--mfa']),
            (2, ['--now', '9007199254740992', 'user', 'set', 'a']),
            (2, ['event', 'add', 'a', 'e2', 'x', 'high', '--at', 'yesterday']),
            (2, ['event', 'add', 'a', 'e2', 'x', 'critical']),
            (2, ['event', 'add', 'a', 'e2', 'x', 'none']),       # none is not an event level
            (1, ['event', 'add', 'a', long_id, 'x', 'high']),
            (1, ['event', 'add', long_id, 'e2', 'x', 'high']),
            (1, ['event', 'add', 'a', 'e2', 'bad type', 'high']),
            (1, ['event', 'add', 'a', 'librisk:x', 'x', 'high']),  # reserved (R-SC-5)
            (1, ['event', 'add', 'a', b'e\xc3(', 'x', 'high']),    # invalid UTF-8
            (1, ['event', 'add', 'a', 'e\x01', 'x', 'high']),      # control character
            (1, ['user', 'set', b'\xff\xfe', '--mfa']),
            (1, ['user', 'set', long_id]),
            (1, ['resolve', 'e1', '--note', 'n' * 1025]),
            (1, ['resolve', 'e1', '--note', b'bad\xff']),
            (1, ['event', 'add', 'a', 'e2', 'x', 'high', '--ip', 'i' * 257]),
            (2, ['user', 'set', 'a', '--mfa', '--unknown']),
            (2, ['resolve']),
        ]
        for code, args in cases:
            with self.subTest(args=args):
                p = self.run_ctl(*args, '--json')
                self.assertEqual(p.returncode, code, (p.stdout, p.stderr))
                out = json.loads(p.stdout)   # valid JSON even for hostile bytes
                self.assertEqual(out['error'], 'RISK_EINVAL')
                self.assertEqual(out['code'], -1)
                self.assertIn(b'RISK_EINVAL' if code == 1 else b'usage', p.stderr)
                self.assertEqual(before, self.digest())

    def test_json_escaping_roundtrip(self):
        note = 'quote " backslash \\ tab \t newline \n ünïcødé ✓'
        self.event('a', 'e1', 'low', T0_MS)
        e = self.js('resolve', 'e1', '--note', note)
        self.assertEqual(e['note'], note)
        self.assertEqual(self.js('history', 'a')[-1]['note'], note)


class TestImport(Base):
    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, 'w', newline='') as f:
            f.write(text)
        return path

    def test_import_columns_any_order_and_quoting(self):
        csv = ('level,id,user_id,type,location,detected_at\r\n'
               'high,e1,alice,leakedCredentials,"Paris, ""FR""",2026-11-24T10:00:00Z\r\n'
               'low,e2,bob,unfamiliarFeatures,"two\nlines",1795514400001\r\n'
               '\r\n'
               'medium,e3,alice,unlikelyTravel,,2026-11-24T10:00:00.500Z\r\n')
        # A quoted line break is CSV-legal but a control character in a
        # location is not (SPEC §2): that line alone fails, and line
        # numbers keep counting physical lines after it.
        out = self.js('event', 'import', self.write('a.csv', csv), code=1)
        self.assertEqual((out['ok'], out['failed']), (2, 1))
        self.assertEqual([(r['line'], r['ok']) for r in out['results']],
                         [(2, True), (3, False), (6, True)])
        self.assertEqual(out['results'][1]['error'], 'RISK_EINVAL')
        self.assertIn('location', out['results'][1]['message'])
        e1 = self.js('event', 'show', 'e1')
        self.assertEqual((e1['location'], e1['detected_at'], e1['ip']),
                         ('Paris, "FR"', T0_MS, None))
        self.refused('RISK_ENOTFOUND', 'event', 'show', 'e2')
        self.assertEqual(self.js('event', 'show', 'e3')['detected_at'], T0_MS + 500)
        self.assertEqual(self.js('user', 'show', 'alice')['risk_level'], 'high')
        p = self.run_ctl('event', 'import', self.write('b.csv', csv))
        self.assertEqual(p.returncode, 1)
        self.assertIn(b'imported 2 lines, 1 failed', p.stdout)

    def test_import_broken_lines(self):
        # Each line atomic on its own: broken lines are reported, others apply.
        csv = ('user_id,id,type,level,detected_at,timing\n'
               'a,e1,leakedCredentials,high,1000,realtime\n'   # 2 ok
               'a,e2,leakedCredentials,severe,1000,\n'         # 3 unknown level
               'a,e3,leakedCredentials,low,yesterday,\n'       # 4 malformed TIME
               'a,e4,leakedCredentials,low\n'                  # 5 too few fields
               'a,e5,leak"ed,low,1000,\n'                      # 6 stray quote
               'a,e6,leakedCredentials,low,1000,sometimes\n'   # 7 unknown timing
               + 'a,' + 'x' * 257 + ',t,low,1000,\n'           # 8 over-long id
               + 'a,e1,leakedCredentials,low,1000,\n'          # 9 EEXISTS
               'b,e9,unlikelyTravel,medium,2000,offline\n')    # 10 ok
        path = self.write('broken.csv', csv)
        out = self.js('event', 'import', path, code=1)
        self.assertEqual((out['ok'], out['failed']), (2, 7))
        res = {r['line']: r for r in out['results']}
        self.assertEqual(sorted(res), list(range(2, 11)))
        self.assertTrue(res[2]['ok'] and res[10]['ok'])
        for line in range(3, 9):
            self.assertEqual(res[line]['error'], 'RISK_EINVAL', res[line])
            self.assertFalse(res[line]['ok'])
        self.assertEqual(res[9]['error'], 'RISK_EEXISTS')
        self.assertEqual([e['id'] for e in self.js('events', 'a')], ['e1'])
        self.assertEqual(self.js('event', 'show', 'e9')['timing'], 'offline')
        p = self.run_ctl('event', 'import', path)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b'line 3', p.stderr)

    def test_import_bad_header_changes_nothing(self):
        self.event('a', 'e0', 'low', T0_MS)
        before = self.digest()
        for csv in ('user_id,id,type\na,e1,t\n',                     # level missing
                    'user_id,id,type,level,colour\na,e1,t,low,red\n',  # unknown field
                    ''):
            with self.subTest(csv=csv):
                self.refused('RISK_EINVAL', 'event', 'import', self.write('h.csv', csv))
                self.assertEqual(before, self.digest())
        self.refused('RISK_EIO', 'event', 'import', os.path.join(self.tmp, 'missing.csv'))
        self.refused('RISK_EINVAL', 'event', 'import', code=2)

    def test_import_records_across_read_blocks(self):
        # The reader parses 64 KiB blocks: quoted fields, doubled quotes and
        # CRLF line ends must survive a record cut at any block boundary.
        # Lines of every length from 90 to 161 bytes move the cut through
        # every position of a record over the 4 blocks.
        lines = ['user_id,id,type,level,location\r\n']
        n = 0
        while sum(map(len, lines)) < 4 * 65536 + 4096:
            pad = 'x' * (n % 72)
            lines.append('u%d,e%d,leakedCredentials,low,"Paris, ""%s"" FR"\r\n'
                         % (n % 50, n, pad))
            n += 1
        out = self.js('event', 'import', self.write('blocks.csv', ''.join(lines)))
        self.assertEqual((out['ok'], out['failed']), (n, 0))
        for k in (0, 1, n // 2, n - 1):
            self.assertEqual(self.js('event', 'show', 'e%d' % k)['location'],
                             'Paris, "%s" FR' % ('x' * (k % 72)))

    def test_import_broken_line_still_tracks_quotes(self):
        # R-IV-1: a broken line ends at a line break outside quotes; the
        # text of a later quoted field is never imported as a line.
        csv = ('user_id,id,type,level,location\n'
               '"alice" ,e1,leakedCredentials,high,"Paris,\n'          # 2-4 one broken record
               'bob,e2,leakedCredentials,high,injected\n'
               'France"\n'
               'a,e5,leak"ed,low,x\n'                                   # 5 stray quote opens nothing
               'carol,e3,unlikelyTravel,low,"Oslo"\n')                  # 6 ok
        out = self.js('event', 'import', self.write('q.csv', csv), code=1)
        self.assertEqual((out['ok'], out['failed']), (1, 2))
        self.assertEqual([(r['line'], r['ok']) for r in out['results']],
                         [(2, False), (5, False), (6, True)])
        self.assertIn('closing quote', out['results'][0]['message'])
        self.refused('RISK_ENOTFOUND', 'event', 'show', 'e2')
        self.refused('RISK_ENOTFOUND', 'user', 'show', 'bob')
        self.assertEqual(self.js('event', 'show', 'e3')['location'], 'Oslo')

    def test_import_nul_byte_breaks_the_line(self):
        # R-IV-1: a NUL byte would cut "al\0ice" to "al" (two users merged):
        # the line is refused instead.
        csv = (b'user_id,id,type,level,location\n'
               b'al\0ice,e1,leakedCredentials,high,\n'
               b'al\0bob,e2,leakedCredentials,high,\n'
               b'carol,e3,leakedCredentials,low,"x\0y"\n'
               b'dave,e4,leakedCredentials,low,\n')
        path = os.path.join(self.tmp, 'nul.csv')
        with open(path, 'wb') as f:
            f.write(csv)
        out = self.js('event', 'import', path, code=1)
        self.assertEqual((out['ok'], out['failed']), (1, 3))
        for r in out['results'][:3]:
            self.assertEqual((r['ok'], r['error'], r['message']),
                             (False, 'RISK_EINVAL', 'csv: NUL byte in field'))
        self.assertEqual([u['id'] for u in self.js('users', '--min-level', 'none')], ['dave'])

    def test_import_again_without_detected_at(self):
        # R-OP-1: without detected_at a line is stamped now, but an id
        # already stored keeps its detected_at, so the same file imported
        # again applies unchanged; a changed level is still RISK_EEXISTS.
        csv = 'user_id,id,type,level\nerin,e-1,leakedCredentials,high\n'
        path = self.write('nodate.csv', csv)
        self.assertEqual(self.js('event', 'import', path, '--now', T0)['ok'], 1)
        before = self.digest()
        out = self.js('event', 'import', path, '--now', str(T0_MS + HOUR))
        self.assertEqual((out['ok'], out['failed']), (1, 0))
        self.assertEqual(before, self.digest())
        self.assertEqual(self.js('event', 'show', 'e-1')['detected_at'], T0_MS)
        changed = self.write('changed.csv', csv.replace('high', 'low'))
        out = self.js('event', 'import', changed, '--now', str(T0_MS + HOUR), code=1)
        self.assertEqual(out['results'][0]['error'], 'RISK_EEXISTS')
        # The same new id twice in one file, on the real clock.
        twice = self.write('twice.csv', 'user_id,id,type,level,detected_at\n'
                           + 'f,f-1,leakedCredentials,low,\n' * 2)
        out = self.js('event', 'import', twice)
        self.assertEqual((out['ok'], out['failed']), (2, 0))

    def test_import_read_error_reports_the_lines_before_it(self):
        # R-IV-1 (each line atomic): lines before a read error are committed,
        # so they are reported too, then the error (one JSON value).
        a, b = socket.socketpair()
        try:
            b.sendall(b'user_id,id,type,level\nu1,e1,leakedCredentials,high\n'
                      b'u2,e2,leakedCredentials,bogus\nu3,e3,leakedCredentials,low\n')
            a.sendall(b'x')   # left unread by b: closing b resets a (ECONNRESET)
            b.close()
            p = subprocess.run([RISKCTL, 'event', 'import', '-', '--json'], stdin=a.fileno(),
                               capture_output=True, env=self.env, timeout=120)
        finally:
            a.close()
            b.close()
        self.assertEqual(p.returncode, 1, (p.stdout, p.stderr))
        out = json.loads(p.stdout)
        self.assertEqual((out['error'], out['code']), ('RISK_EIO', -10))
        self.assertIn('read error', out['message'])
        self.assertEqual((out['ok'], out['failed']), (2, 1))
        self.assertEqual([(r['line'], r['ok']) for r in out['results']],
                         [(2, True), (3, False), (4, True)])
        self.assertIn(b'line 3', p.stderr)
        self.assertIn(b'RISK_EIO', p.stderr)
        self.assertEqual(self.js('event', 'show', 'e3')['level'], 'low')

    def test_import_applies_lines_as_they_arrive(self):
        # A pipe fed line by line (tail -f d.csv | riskctl event import -):
        # each line is applied without waiting for a full batch or the end.
        writer = self.start_importer()
        try:
            writer.stdin.write(b'user_id,id,type,level\nerin,e-1,leakedCredentials,high\n')
            writer.stdin.flush()
            deadline = time.time() + 20
            seen = []
            while time.time() < deadline and not seen:
                seen = [u['id'] for u in self.js('users')]
                time.sleep(0.05)
            self.assertEqual(seen, ['erin'])
            self.end_importer(writer, b'finn,e-2,leakedCredentials,low\n', 2)
        finally:
            self.stop_importer(writer)

    def test_import_byte_order_mark_and_bare_cr(self):
        # A UTF-8 byte order mark before the header is skipped; a file with
        # bare CR line ends is refused with a clear reason, nothing written.
        path = self.write('bom.csv', '\ufeffuser_id,id,type,level\r\nu,e1,leakedCredentials,low\r\n')
        self.assertEqual(self.js('event', 'import', path)['ok'], 1)
        before = self.digest()
        path = self.write('cr.csv', 'user_id,id,type,level\ru,e2,leakedCredentials,low\r')
        out = self.refused('RISK_EINVAL', 'event', 'import', path)
        self.assertIn('bare CR', out['message'])
        self.assertEqual(before, self.digest())
        out = self.js('event', 'import', self.write('cr2.csv', 'user_id,id,type,level\n'
                                                    'u,e3,leakedCredentials,low\rv\n'), code=1)
        self.assertIn('bare CR', out['results'][0]['message'])

    def test_import_from_stdin(self):
        out = self.js('event', 'import', '-',
                      stdin=b'user_id,id,type,level\nu,e1,leakedCredentials,medium\n')
        self.assertEqual(out['ok'], 1)
        self.assertEqual(self.js('user', 'show', 'u')['risk_level'], 'medium')


class TestConcurrency(Base):
    def wait_open(self, pid, path):
        fd_dir = '/proc/%d/fd' % pid
        if not os.path.isdir(fd_dir):
            time.sleep(2)
            return
        real = os.path.realpath(path)
        deadline = time.time() + 30
        while time.time() < deadline:
            for fd in os.listdir(fd_dir):
                try:
                    if os.readlink(os.path.join(fd_dir, fd)) == real:
                        time.sleep(0.2)  # the lock is taken right after open
                        return
                except OSError:
                    pass
            time.sleep(0.02)
        self.fail('the writer never opened the journal')

    def test_reader_beside_writer_and_second_writer(self):
        # R-CC-3: two processes cannot open the journal for writing at once
        # (RISK_EBUSY), a reader works beside the writer, the store stays sound.
        self.event('a', 'e1', 'high', T0_MS)
        writer = self.start_importer()
        try:
            writer.stdin.write(b'user_id,id,type,level\n')
            writer.stdin.flush()
            # Wait until the importer has the journal open (Linux: its fd
            # shows in /proc; probing with another writer could take the
            # lock first and make the importer the one refused).
            self.wait_open(writer.pid, self.store)
            # A reader works beside the writer.
            self.assertEqual([u['id'] for u in self.js('users')], ['a'])
            self.assertEqual(self.js('event', 'show', 'e1')['level'], 'high')
            # A second writer gets a clear RISK_EBUSY and changes nothing.
            out = self.refused('RISK_EBUSY', 'user', 'set', 'intruder')
            self.assertEqual(out['code'], -8)
            self.end_importer(writer, b'b,e2,leakedCredentials,low\n', 1)
        finally:
            self.stop_importer(writer)
        self.assertTrue(self.js('check')['ok'])
        self.assertEqual(sorted(u['id'] for u in self.js('users')), ['a', 'b'])
        self.refused('RISK_ENOTFOUND', 'user', 'show', 'intruder')


    def test_signin_beside_writer(self):
        # R-SC-2, R-CC-3: while an import holds the journal for writing, a
        # sign-in still decides (read-only, as of its open), with a receipt;
        # other writers get RISK_EBUSY.
        self.event('a', 'e1', 'high', T0_MS)
        self.js('policy', 'set', 'p', '--threshold', 'high', '--control', 'block')
        writer = self.start_importer()
        try:
            writer.stdin.write(b'user_id,id,type,level\n')
            writer.stdin.flush()
            self.wait_open(writer.pid, self.store)
            v = self.js('signin', 'a')
            self.assertEqual((v['decision'], v['reason']), ('block', 'risk_level'))
            rec = self.js('signin', 'a', '--receipt')['receipt']
            self.refused('RISK_EBUSY', 'user', 'set', 'intruder')
            self.end_importer(writer, b'b,e2,leakedCredentials,low\n', 1)
        finally:
            self.stop_importer(writer)
        self.assertTrue(self.js('receipt', 'verify', '-', stdin=rec.encode())['ok'])
        self.assertEqual(self.js('signin', 'a')['decision'], 'block')


class TestDemo(Base):
    def test_demo_walks_the_four_ways(self):
        # The seed's four ways, with real verdicts from the library.
        out = self.ok('demo')
        for needle in ('require_password_change (reason risk_level',
                       'block (reason not_mfa_registered',       # R-PO-2
                       'RISK_ENOMFA',                            # R-PW-2
                       'temporary_password',                     # R-PW-1, R-PO-7
                       'reset_required',
                       'user_deleted',                           # R-PO-6
                       'admin_dismissed_all_risk',               # R-DI-1
                       'note: ignore',                           # R-EV-2 refusal
                       'RISK_ETRANSITION'):                      # R-EV-4
            self.assertIn(needle, out)
        self.assertIn('closed/remediated', out)  # R-EV-4's own refusal
        self.assertIn('hash chain verified', out)  # R-AU-2
        self.assertNotIn('!! expected', out)
        self.assertIsNone(self.digest())  # the demo never touches the journal
        js = self.js('demo')
        self.assertTrue(js['ok'])
        titles = [s['title'] for s in js['steps']]
        self.assertEqual(len([t for t in titles if t[:2] in ('1.', '2.', '3.', '4.')]), 4)


# ---- issue 8: audit chain, what-if, receipts (SPEC §10) ----

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    """CRC32C as docs/journal-format.md defines it (Castagnoli, reflected)."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def journal_frames(data):
    """(offset, length) of each frame of a journal (docs/journal-format.md)."""
    frames, o = [], 32
    while o + 16 <= len(data):
        n = int.from_bytes(data[o:o + 4], 'little')
        frames.append((o, 16 + n))
        o += 16 + n
    return frames


def history_ops(data):
    """(frame offset, body offset, body length) of every history-item
    operation (tag 6) in the journal."""
    out = []
    for fo, flen in journal_frames(data):
        o, end = fo + 16, fo + flen
        while o < end:
            tag, n = data[o], int.from_bytes(data[o + 1:o + 5], 'little')
            if tag == 6:
                out.append((fo, o + 5, n))
            o += 5 + n
    return out


def refix_crc(data, frame_off):
    """Recompute a frame's CRC32C(salt ‖ header bytes 0-11 ‖ payload) so
    that only the history chain can notice a change inside it."""
    n = int.from_bytes(data[frame_off:frame_off + 4], 'little')
    crc = crc32c(bytes(data[16:24]) + bytes(data[frame_off:frame_off + 12]) +
                 bytes(data[frame_off + 16:frame_off + 16 + n]))
    data[frame_off + 12:frame_off + 16] = crc.to_bytes(4, 'little')


class TestAudit(Base):
    MARK = b'ZZZZMARKERZZZZ'

    def setup_history(self):
        self.event('a', 'e1', 'high', T0_MS)
        self.event('b', 'f1', 'low', T0_MS)
        self.js('dismiss', 'a', '--note', self.MARK.decode())
        self.event('a', 'e2', 'medium', T0_MS)
        self.js('policy', 'set', 'p', '--threshold', 'high', '--control', 'block')
        item = [h for h in self.js('history', '--all') if h['note'] == self.MARK.decode()]
        self.assertEqual(len(item), 1)
        with open(self.store, 'rb') as f:
            data = bytearray(f.read())
        ops = [op for op in history_ops(data) if self.MARK in data[op[1]:op[1] + op[2]]]
        self.assertEqual(len(ops), 1)
        return data, ops[0], item[0]['seq']

    def write(self, data):
        with open(self.store, 'wb') as f:
            f.write(data)

    def test_crc32c_matches_the_documented_check_value(self):
        # The test's own CRC32C (docs/journal-format.md): 0xE3069283 for "123456789".
        self.assertEqual(crc32c(b'123456789'), 0xE3069283)

    def test_check_finds_a_changed_history_byte_by_frame_crc(self):
        # R-AU-2 (with R-IV-2): one byte of a history item changed in the
        # file, CRC not fixed: the frame check fails it.
        data, (fo, bo, n), seq = self.setup_history()
        self.assertTrue(self.js('check')['ok'])
        i = bo + data[bo:bo + n].index(self.MARK) + 4
        data[i] ^= 0x01
        self.write(data)
        self.refused('RISK_ECORRUPT', 'check')

    def test_check_finds_a_changed_history_item_by_its_chain(self):
        # R-AU-1, R-AU-2: the byte flip with the frame CRC recomputed passes
        # every frame check; only the chain finds it, naming the item's seq.
        data, (fo, bo, n), seq = self.setup_history()
        i = bo + data[bo:bo + n].index(self.MARK) + 4
        data[i] ^= 0x01
        refix_crc(data, fo)
        self.write(data)
        # The file still opens: a reader sees the altered note.
        notes = [h['note'] for h in self.js('history', 'a')]
        self.assertIn('ZZZZLARKERZZZZ', notes)
        out = self.refused('RISK_EVERIFY', 'check')
        self.assertEqual(out['seq'], seq)
        self.assertIn('item %d' % seq, out['message'])
        p = self.run_ctl('check')
        self.assertEqual(p.returncode, 1)
        self.assertIn(b'seq %d' % seq, p.stderr)

    def test_check_finds_every_changed_byte_of_a_history_item(self):
        # R-AU-2: any one byte of the item changed (CRC fixed so the frame
        # is valid) makes check exit non-zero.
        data, (fo, bo, n), seq = self.setup_history()
        orig = bytes(data)
        for k in range(n):
            d = bytearray(orig)
            d[bo + k] ^= 0x20
            refix_crc(d, fo)
            self.write(d)
            p = self.run_ctl('check', '--json')
            self.assertEqual(p.returncode, 1, (k, p.stdout, p.stderr))
            out = json.loads(p.stdout)
            self.assertIn(out['error'], ('RISK_EVERIFY', 'RISK_ECORRUPT'), (k, out))
        self.write(orig)
        self.assertTrue(self.js('check')['ok'])

    def test_anchor_finds_removed_newest_items(self):
        # R-AU-3: truncating at a frame boundary leaves a consistent store
        # (every chain matches), but not the anchor taken before.
        self.event('a', 'e1', 'high', T0_MS)
        self.event('b', 'f1', 'low', T0_MS)
        cut = os.path.getsize(self.store)
        self.js('resolve', 'e1')
        self.event('c', 'g1', 'medium', T0_MS)
        anc = self.js('anchor')
        self.assertEqual(anc['seq'], max(h['seq'] for h in self.js('history', '--all')))
        self.assertEqual(anc['subjects'], 3)
        self.assertEqual(len(anc['hash']), 64)
        self.assertEqual(anc['anchor'], self.ok('anchor').strip())
        self.assertTrue(anc['anchor'].startswith('librisk-anchor 1 %d 3 ' % anc['seq']))
        afile = os.path.join(self.tmp, 'anchor.txt')
        with open(afile, 'w') as f:
            f.write(self.ok('anchor'))
        chk = self.js('check', '--anchor', afile)
        self.assertEqual(chk['verified_against'], anc['anchor'])
        with open(self.store, 'r+b') as f:
            f.truncate(cut)
        self.assertTrue(self.js('check')['ok'])                       # chains alone agree
        out = self.refused('RISK_EVERIFY', 'check', '--anchor', afile)
        self.assertIn('removed', out['message'])
        self.refused('RISK_EVERIFY', 'check', '--anchor', '-', stdin=anc['anchor'].encode())
        jfile = os.path.join(self.tmp, 'anchor.json')                 # anchor --json kept
        with open(jfile, 'w') as f:
            json.dump(anc, f)
        self.refused('RISK_EVERIFY', 'check', '--anchor', jfile)
        self.refused('RISK_EVERIFY', 'check', '--anchor', anc['anchor'])
        empty = os.path.join(self.tmp, 'empty.txt')
        open(empty, 'w').close()
        self.refused('RISK_EINVAL', 'check', '--anchor', empty, code=2)

    def test_anchor_of_missing_journal(self):
        # R-AU-3: an empty history has the anchor of seq 0; reads create nothing.
        anc = self.js('anchor')
        self.assertEqual((anc['seq'], anc['subjects']), (0, 0))
        self.assertIsNone(self.digest())


class TestWhatIf(Base):
    def population(self):
        self.js('--now', T0, 'user', 'set', 'alice', '--mfa')
        self.js('--now', T0, 'user', 'set', 'carol', '--mfa')
        self.js('user', 'set', 'dave')
        self.js('user', 'set', 'erin')
        self.event('alice', 'e1', 'high', T0_MS)
        self.event('bob', 'e2', 'medium', T0_MS)
        self.event('carol', 'e3', 'low', T0_MS)
        self.event('erin', 'e4', 'high', T0_MS)
        self.js('user', 'set', 'erin', '--deleted')
        self.js('policy', 'set', 'high-block', '--threshold', 'high', '--control', 'block',
                '--exclude', 'alice')

    def groups(self, wi):
        return {(r['decision'], r['reason']): r for r in wi['results']}

    def signins(self, users, now):
        got = {}
        for u in users:
            v = self.js('signin', u, '--now', now)
            got.setdefault((v['decision'], v['reason']), []).append(u)
        return got

    def test_what_if_agrees_with_real_sign_ins(self):
        # R-WI-1: counts per decision and reason, users for each, nothing
        # changed. R-WI-2: after policy set, real sign-ins at the same time
        # decide exactly that.
        self.population()
        now = str(T0_MS + DAY)
        before = self.digest()
        wi = self.js('policy', 'what-if', 'med-pw', '--threshold', 'medium', '--control',
                     'require_password_change', '--exclude', 'carol', '--now', now)
        self.assertEqual(self.digest(), before)                        # R-WI-1
        self.assertEqual(wi['at'], T0_MS + DAY)
        self.assertEqual(wi['total'], 5)
        self.assertEqual(sorted(wi['policies']), ['high-block', 'med-pw'])
        self.assertEqual(sum(r['count'] for r in wi['results']), 5)
        g = self.groups(wi)
        self.assertEqual(g[('require_password_change', 'risk_level')]['users'], ['alice'])
        self.assertEqual(g[('block', 'not_mfa_registered')]['users'], ['bob'])
        self.assertEqual(g[('block', 'user_deleted')]['users'], ['erin'])
        self.assertEqual(sorted(g[('allow', 'none')]['users']), ['carol', 'dave'])
        self.assertIn('risk_level', self.ok('policy', 'what-if', 'med-pw', '--threshold',
                                            'medium', '--control', 'require_password_change'))
        self.js('policy', 'set', 'med-pw', '--threshold', 'medium', '--control',
                'require_password_change', '--exclude', 'carol')
        real = self.signins(['alice', 'bob', 'carol', 'dave', 'erin'], now)   # R-WI-2
        self.assertEqual({k: sorted(v) for k, v in real.items()},
                         {k: sorted(r['users']) for k, r in g.items()})
        self.assertEqual({k: len(v) for k, v in real.items()},
                         {k: r['count'] for k, r in g.items()})

    def test_what_if_replace_and_remove(self):
        # R-WI-1, R-WI-2: a candidate replaces the stored policy of its
        # name; --remove evaluates the stored set without it.
        self.population()
        now = str(T0_MS + DAY)
        wi = self.js('policy', 'what-if', 'high-block', '--threshold', 'low', '--control',
                     'block', '--now', now)
        self.assertEqual(wi['policies'], ['high-block'])
        g = self.groups(wi)
        self.assertEqual(sorted(g[('block', 'risk_level')]['users']), ['alice', 'bob', 'carol'])
        rm = self.js('policy', 'what-if', '--remove', 'high-block', '--now', now)
        self.assertEqual(rm['policies'], [])
        self.js('policy', 'remove', 'high-block')
        real = self.signins(['alice', 'bob', 'carol', 'dave', 'erin'], now)
        self.assertEqual({k: sorted(v) for k, v in real.items()},
                         {(r['decision'], r['reason']): sorted(r['users'])
                          for r in rm['results']})
        self.refused('RISK_ENOTFOUND', 'policy', 'what-if', '--remove', 'high-block')

    def test_what_if_paging_and_usage(self):
        # R-WI-1: users are paged per group (--limit, --offset).
        for i in range(5):
            self.js('user', 'set', 'u%d' % i)
        page = self.js('policy', 'what-if', 'p', '--threshold', 'high', '--control', 'block',
                       '--limit', '2', '--offset', '1')
        (r,) = page['results']
        self.assertEqual((r['decision'], r['reason'], r['count']), ('allow', 'none', 5))
        self.assertEqual(r['users'], ['u1', 'u2'])
        full = self.js('policy', 'what-if', 'p', '--threshold', 'high', '--control', 'block')
        self.assertEqual(full['results'][0]['users'], ['u%d' % i for i in range(5)])
        # the text footer names the users shown, and none past the last
        wi = ('policy', 'what-if', 'p', '--threshold', 'high', '--control', 'block')
        self.assertIn('users 4–5 of each group shown', self.ok(*wi, '--offset', '3'))
        self.assertIn('users 1–2 of each group shown', self.ok(*wi, '--limit', '2'))
        self.assertIn('no users shown: --offset 5, --limit 20, the largest group has 5',
                      self.ok(*wi, '--offset', '5'))
        self.refused('RISK_EINVAL', 'policy', 'what-if', 'p', '--threshold', 'high', code=2)
        self.refused('RISK_EINVAL', 'policy', 'what-if', 'p', '--threshold', 'huge',
                     '--control', 'block', code=2)
        self.refused('RISK_EINVAL', 'policy', 'what-if', '--remove', 'p', '--threshold',
                     'high', code=2)
        self.refused('RISK_EINVAL', 'policy', 'what-if', 'p', '--threshold', 'high',
                     '--control', 'block', '--limit', 'x', code=2)
        for bad in ('+2', ' 2', '-2', '1000000001'):
            self.refused('RISK_EINVAL', 'policy', 'what-if', 'p', '--threshold', 'high',
                         '--control', 'block', '--limit', bad, code=2)


class TestReceipts(Base):
    def test_receipt_round_trip_and_any_field_changed(self):
        # R-RC-1: signin --receipt; the key beside the journal (0600, 32
        # bytes); receipt verify accepts it and refuses any changed field.
        self.event('a', 'e1', 'high', T0_MS)
        self.event('a', 'e2', 'low', T0_MS)
        self.js('policy', 'set', 'p', '--threshold', 'high', '--control', 'block')
        key = self.store + '.key'
        self.assertTrue(os.path.exists(key))          # made by the first writing command
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertEqual(os.path.getsize(key), 32)
        v = self.js('signin', 'a', '--receipt', '--now', str(T0_MS + HOUR))
        self.assertEqual(v['decision'], 'block')
        rec = v['receipt']
        lines = rec.splitlines()
        self.assertEqual(lines[0], 'librisk-receipt 1')
        for want in ('user_id=a', 'at=%d' % (T0_MS + HOUR), 'decision=block',
                     'reason=risk_level', 'level=high', 'policy=p', 'event=e1', 'event=e2'):
            self.assertIn(want, lines)
        self.assertNotIn('receipt', self.js('signin', 'a'))
        path = os.path.join(self.tmp, 'r.txt')
        with open(path, 'w') as f:
            f.write(rec)
        ok = self.js('receipt', 'verify', path)
        self.assertEqual((ok['ok'], ok['user_id'], ok['decision'], ok['policy'], ok['events']),
                         (True, 'a', 'block', 'p', ['e1', 'e2']))
        self.assertIn('valid', self.ok('receipt', 'verify', '-', stdin=rec.encode()))
        human = self.ok('signin', 'a', '--receipt')      # the human output verifies as is
        self.ok('receipt', 'verify', '-', stdin=human.encode())
        crlf = rec.replace('\n', '\r\n')      # saved on Windows: the same receipt
        self.assertTrue(self.js('receipt', 'verify', '-', stdin=crlf.encode())['ok'])
        self.refused('RISK_EVERIFY', 'receipt', 'verify', '-',
                     stdin=crlf.replace('decision=block', 'decision=allow').encode())
        jpath = os.path.join(self.tmp, 'r.json')
        with open(jpath, 'w') as f:
            json.dump(v, f)
        self.ok('receipt', 'verify', jpath)
        # Any field changed: each line's value altered, a line dropped.
        for i, line in enumerate(lines[1:], 1):
            k, _, val = line.partition('=')
            for alt in (val + 'x', val[:-1] if val else 'x'):
                changed = lines[:i] + ['%s=%s' % (k, alt)] + lines[i + 1:]
                out = self.refused('RISK_EVERIFY', 'receipt', 'verify', '-',
                                   stdin=('\n'.join(changed) + '\n').encode())
                self.assertTrue(out['message'])
            dropped = lines[:i] + lines[i + 1:]
            self.refused('RISK_EVERIFY', 'receipt', 'verify', '-',
                         stdin=('\n'.join(dropped) + '\n').encode())
        # Another key (the key file replaced): the receipt no longer verifies.
        os.unlink(key)
        self.js('user', 'set', 'z')
        self.assertTrue(os.path.exists(key))
        self.refused('RISK_EVERIFY', 'receipt', 'verify', path)

    def test_receipt_verify_finds_the_receipt_not_a_look_alike(self):
        # R-RC-1: the JSON form is read from its top-level "receipt" key, the
        # text form from a line that is exactly "librisk-receipt N", so ids
        # like "receipt" or "librisk-receipt 1" do not break verification.
        for user in ('receipt', 'librisk-receipt 1', 'zoë'):
            with self.subTest(user=user):
                self.event(user, 'e-' + user, 'high', T0_MS)
                v = self.js('signin', user, '--receipt')
                for i, (name, text) in enumerate((
                        ('r.json', json.dumps(v, ensure_ascii=False)),
                        ('a.json', json.dumps(v, ensure_ascii=True, indent=2)),
                        ('r.txt', self.ok('signin', user, '--receipt')))):
                    path = os.path.join(self.tmp, name)
                    with open(path, 'w', encoding='utf-8') as f:
                        f.write(text)
                    ok = self.js('receipt', 'verify', path)
                    self.assertEqual((ok['ok'], ok['user_id']), (True, user), name)
        bad = json.dumps({'user_id': 'receipt', 'report_only': [{'receipt': 'x'}]})
        self.refused('RISK_EVERIFY', 'receipt', 'verify', '-', stdin=bad.encode())

    def test_receipt_key_missing_and_memory(self):
        # R-RC-1: no key yet is a clear refusal; --memory signs under a
        # per-process key.
        path = os.path.join(self.tmp, 'r.txt')
        with open(path, 'w') as f:
            f.write('librisk-receipt 1\n')
        self.refused('RISK_ENOTFOUND', 'receipt', 'verify', path)
        self.refused('RISK_EIO', 'receipt', 'verify', os.path.join(self.tmp, 'none'))
        v = self.js('--memory', 'signin', 'ghost', '--receipt')
        self.assertIn('mac=', v['receipt'])
        self.assertIsNone(self.digest())
        self.assertFalse(os.path.exists(self.store + '.key'))
        self.refused('RISK_EINVAL', '--memory', 'receipt', 'verify', path, code=2)
        # signin --receipt on a fresh journal makes the key.
        self.event('a', 'e1', 'low', T0_MS)
        os.unlink(self.store + '.key')
        self.assertIn('mac=', self.js('signin', 'a', '--receipt')['receipt'])
        self.assertEqual(os.stat(self.store + '.key').st_mode & 0o777, 0o600)


if __name__ == '__main__':
    if not RISKCTL:
        sys.exit('set RISKCTL to the riskctl program')
    unittest.main()
