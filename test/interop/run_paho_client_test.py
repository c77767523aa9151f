#!/usr/bin/env python3
"""
Runs the Eclipse Paho MQTT 3.1.1 interoperability client test (paho/client_test.py, vendored unchanged) against the
broker at --host and --port, printing one line per test and, last, one JSON line:

  PAHO-RESULTS {"tests": [{"name", "outcome": "pass" | "fail" | "error" | "not run", "seconds", "reasons", "output"}],
                "ran": n, "fixtureErrors": [...]}

The suite catches its own exceptions, prints their tracebacks and then fails with "False != True"; so for a test that
did not pass, `output` is what it printed while it ran and `reasons` are the exception lines of those tracebacks
(e.g. "AssertionError: connect was ..."). A test stopped by a failed setUpClass stays "not run" (fixtureErrors says
why).

client_test.py reads the broker's address from globals that its `__main__` block sets from --hostname and --port,
then calls unittest.main(), which parses the command line again and stops at those options. So this wrapper runs
the file as `__main__` (runpy) with --hostname and --port, and hands it, in place of unittest.main, a runner that
takes no arguments and reports each test. The suite's files are not changed.

Usage: python3 -B test/interop/run_paho_client_test.py --host 127.0.0.1 --port 1883
Exit code: 0 when every test ran and passed, 1 otherwise, 2 on bad arguments.
"""

import argparse
import io
import json
import os
import re
import runpy
import sys
import time
import unittest

EXCEPTION_LINE = re.compile(r'^[A-Za-z_][\w.]*(Error|Exception|Exit)\b')
SUITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'paho', 'client_test.py')


class Tee(io.TextIOBase):
  """Writes to a stream and to a transcript."""

  def __init__(self, stream, transcript):
    self.stream = stream
    self.copy = transcript

  def write(self, text):
    self.copy.write(text)
    self.stream.write(text)
    self.stream.flush()
    return len(text)

  def flush(self):
    self.stream.flush()


class Results(unittest.TestResult):
  """One entry per test of the suite, in the order unittest runs them; a test's output is kept while it runs."""

  def __init__(self, names):
    super().__init__()
    self.tests = {name: {'name': name, 'outcome': 'not run', 'seconds': 0, 'reasons': [], 'output': ''} for name in names}
    self.fixture_errors = []
    self._started = 0.0
    self._saved = None
    self._transcript = None

  def startTest(self, test):
    super().startTest(test)
    self._started = time.monotonic()
    self._saved = (sys.stdout, sys.stderr)
    self._transcript = io.StringIO()  # stdout and stderr in the order written
    sys.stdout = Tee(self._saved[0], self._transcript)
    sys.stderr = Tee(self._saved[1], self._transcript)
    print('--- %s' % test._testMethodName, flush=True)

  def stopTest(self, test):
    sys.stdout, sys.stderr = self._saved
    entry = self.tests[test._testMethodName]
    entry['seconds'] = round(time.monotonic() - self._started, 1)
    if entry['outcome'] != 'pass':
      entry['output'] = self._transcript.getvalue()
      entry['reasons'] = [line for line in entry['output'].splitlines() if EXCEPTION_LINE.match(line)]
    print('%-5s %s (%.1f s)' % (entry['outcome'], entry['name'], entry['seconds']), flush=True)
    super().stopTest(test)

  def _set(self, test, outcome, err=None):
    name = getattr(test, '_testMethodName', None)
    if name in self.tests:
      self.tests[name]['outcome'] = outcome
      if err is not None:
        self.tests[name]['error'] = self._exc_info_to_string(err, test).strip().splitlines()[-1]
    else:
      # setUpClass and the like: no test of its own; the tests it stopped stay "not run".
      self.fixture_errors.append('%s: %s' % (test, self._exc_info_to_string(err, test).strip()))
      print('error in %s:\n%s' % (test, self._exc_info_to_string(err, test)), file=sys.stderr, flush=True)

  def addSuccess(self, test):
    super().addSuccess(test)
    self._set(test, 'pass')

  def addFailure(self, test, err):
    super().addFailure(test, err)
    self._set(test, 'fail', err)

  def addError(self, test, err):
    super().addError(test, err)
    self._set(test, 'error', err)


def main():
  parser = argparse.ArgumentParser(description='Runs paho/client_test.py against a broker.')
  parser.add_argument('--host', required=True, help='IPv4 address of the broker (the suite opens AF_INET sockets)')
  parser.add_argument('--port', required=True, type=int, help='its MQTT (TCP) port')
  args = parser.parse_args()

  sys.path.insert(0, os.path.dirname(SUITE))  # the suite imports its `mqtt` package from its own folder
  report = {}

  def run_suite(*_args, **_kwargs):
    module = sys.modules['__main__']  # the suite, while runpy runs it
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    names = [t._testMethodName for t in suite_tests(suite)]
    results = Results(names)
    suite.run(results)
    report['tests'] = list(results.tests.values())
    report['ran'] = results.testsRun
    report['fixtureErrors'] = results.fixture_errors

  unittest.main = run_suite
  sys.argv = [SUITE, '--hostname', args.host, '--port', str(args.port)]
  runpy.run_path(SUITE, run_name='__main__')

  tests = report.get('tests', [])
  passed = sum(1 for t in tests if t['outcome'] == 'pass')
  print('\n%d of %d passed, %d ran' % (passed, len(tests), report.get('ran', 0)))
  for t in tests:
    print('  %-7s %-30s %5.1f s  %s' % (t['outcome'], t['name'], t['seconds'], ' | '.join(t['reasons'])))
  print('PAHO-RESULTS ' + json.dumps(report), flush=True)
  # The suite's receiver threads may still block on their sockets: leave without waiting for them.
  os._exit(0 if tests and passed == len(tests) else 1)


def suite_tests(suite):
  for item in suite:
    if isinstance(item, unittest.TestSuite):
      yield from suite_tests(item)
    else:
      yield item


if __name__ == '__main__':
  main()
