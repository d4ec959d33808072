"""flux pgrep and flux pkill (flux-pgrep(1)) against a real instance.

Test-mode exec: a "running" job holds its core for its run_duration
without a process; held jobs stay pending without resources, so most
jobs here are held and named so that each test's pattern selects only
its own jobs (the tests of this module may share one instance).
"""
from __future__ import annotations

import pytest
from helpers.live import JOBS_CONF, eventlog, flux, start_instance, submit1, wait_for

from flux.job.JobID import JobID

CONF = JOBS_CONF + """
[queues.batch]
[queues.debug]
[queues.other]
[policy.jobspec.defaults.system]
queue = "batch"
"""


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    instance = start_instance(tmp_path_factory, CONF)
    r = flux(instance, "queue", "start", "--all")    # named queues start stopped
    assert r.exit_code == 0, r.output
    yield instance
    assert instance.stop() == 0


@pytest.fixture(scope="module")
def jobs(inst):
    """alpha/beta jobs in every state class: done, running, held (pending)."""
    ids = {}
    ids["alpha-done"] = submit1(inst, "--job-name=alpha-done", "true")
    wait_for(inst, ids["alpha-done"])
    ids["alpha-run"] = submit1(inst, "--job-name=alpha-run", "-S",
                               "system.exec.test.run_duration=600", "true")
    wait_for(inst, ids["alpha-run"], "start")
    ids["alpha-held"] = submit1(inst, "--job-name=alpha-held", "--urgency=hold", "true")
    ids["beta-held"] = submit1(inst, "--job-name=beta-held", "--urgency=hold",
                               "--queue=debug", "true")
    ids["gamma-held"] = submit1(inst, "--job-name=gamma-held", "--urgency=hold",
                                "--queue=other", "true")
    return ids


def ids_of(r):
    assert r.exit_code == 0, r.output
    return [JobID(line) for line in r.stdout.splitlines()]


def test_pattern_matches_active_jobs_by_name(inst, jobs):
    r = flux(inst, "pgrep", "^alpha")
    # the default format: bare ids, no header; the inactive job is not considered
    assert set(ids_of(r)) == {jobs["alpha-run"], jobs["alpha-held"]}
    assert r.stdout.splitlines()[0] in (jobs["alpha-run"].f58, jobs["alpha-held"].f58)


def test_pattern_is_a_regular_expression_searched_in_the_name(inst, jobs):
    assert set(ids_of(flux(inst, "pgrep", "a-(run|held)$"))) == \
        {jobs["alpha-run"], jobs["alpha-held"], jobs["beta-held"], jobs["gamma-held"]}
    assert ids_of(flux(inst, "pgrep", "ta-h")) == [jobs["beta-held"]]


def test_all_states(inst, jobs):
    assert set(ids_of(flux(inst, "pgrep", "-a", "^alpha"))) == \
        {jobs["alpha-done"], jobs["alpha-run"], jobs["alpha-held"]}


@pytest.mark.parametrize("filt, names", [
    ("running", {"alpha-run"}),
    ("pending", {"alpha-held"}),
    ("completed", {"alpha-done"}),
    ("inactive", {"alpha-done"}),
    ("run,completed", {"alpha-run", "alpha-done"}),
])
def test_filter(inst, jobs, filt, names):
    r = flux(inst, "pgrep", "-f", filt, "^alpha")
    assert set(ids_of(r)) == {jobs[n] for n in names}


def test_no_match_exits_1_and_prints_nothing(inst, jobs):
    r = flux(inst, "pgrep", "^no-such-job$")
    assert (r.exit_code, r.stdout) == (1, "")
    # an inactive job is not a match without -a
    r = flux(inst, "pgrep", "alpha-done")
    assert (r.exit_code, r.stdout) == (1, "")
    # nor a job of the filtered-out state
    assert flux(inst, "pgrep", "-f", "failed", "alpha").exit_code == 1


def test_queue(inst, jobs):
    assert ids_of(flux(inst, "pgrep", "-q", "debug", "held")) == [jobs["beta-held"]]
    r = flux(inst, "pgrep", "-q", "debug,other", "held")
    assert set(ids_of(r)) == {jobs["beta-held"], jobs["gamma-held"]}
    r = flux(inst, "pgrep", "-q", "debug", "--queue", "other", "held")
    assert set(ids_of(r)) == {jobs["beta-held"], jobs["gamma-held"]}
    assert flux(inst, "pgrep", "-q", "debug", "alpha").exit_code == 1


def test_user(inst, jobs):
    assert flux(inst, "pgrep", "-u", "4242", "alpha").exit_code == 1
    assert set(ids_of(flux(inst, "pgrep", "-A", "^alpha"))) == \
        {jobs["alpha-run"], jobs["alpha-held"]}
    assert set(ids_of(flux(inst, "pgrep", "-u", "all", "^alpha"))) == \
        {jobs["alpha-run"], jobs["alpha-held"]}


def test_jobid_range(inst, jobs):
    first, last = jobs["alpha-done"], jobs["gamma-held"]
    r = flux(inst, "pgrep", "-a", f"{first.f58}..{last.f58}")
    assert set(ids_of(r)) >= set(jobs.values())
    r = flux(inst, "pgrep", "-a", f"{jobs['alpha-run'].f58}..{jobs['beta-held'].f58}")
    assert set(ids_of(r)) == {jobs["alpha-run"], jobs["alpha-held"], jobs["beta-held"]}
    # other encodings; with a pattern as well, both must match
    r = flux(inst, "pgrep", "-a", f"{int(first)}..{jobs['beta-held'].hex}", "held")
    assert set(ids_of(r)) == {jobs["alpha-held"], jobs["beta-held"]}
    # a range that holds none of them
    assert flux(inst, "pgrep", "-a", f"{first.f58}..{first.f58}", "beta").exit_code == 1


def test_name_prefix_forces_a_pattern(inst, jobs):
    first, last = jobs["alpha-done"], jobs["gamma-held"]
    # as a pattern "X..Y" matches no name
    r = flux(inst, "pgrep", "-a", f"name:{first.f58}..{last.f58}")
    assert (r.exit_code, r.stdout) == (1, "")
    assert ids_of(flux(inst, "pgrep", "name:^g")) == [jobs["gamma-held"]]


def test_count_limits_the_matches(inst, jobs):
    r = flux(inst, "pgrep", "-a", "-c", "1", "^alpha")
    assert len(ids_of(r)) == 1
    r = flux(inst, "pgrep", "-a", "-c", "2", "^alpha")
    assert len(ids_of(r)) == 2


def test_max_entries_limits_the_jobs_considered(inst, jobs):
    # only the first job job-list returns is matched against the pattern
    r = flux(inst, "pgrep", "--max-entries", "1", "-f", "pending", ".")
    assert len(ids_of(r)) == 1
    r = flux(inst, "pgrep", "--max-entries", "1", "-f", "pending", "^gamma")
    assert (r.exit_code, r.stdout) == (1, "")
    assert ids_of(flux(inst, "pgrep", "-f", "pending", "^gamma")) == [jobs["gamma-held"]]
    r = flux(inst, "pgrep", "--max-entries", "1", "-f", "running", "^alpha")
    assert ids_of(r) == [jobs["alpha-run"]]


def test_format_and_header(inst, jobs):
    r = flux(inst, "pgrep", "-o", "{id.f58} {name}", "beta")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["JOBID NAME", f"{jobs['beta-held'].f58} beta-held"]
    r = flux(inst, "pgrep", "-n", "-o", "{id.f58} {name}", "beta")
    assert r.stdout.splitlines() == [f"{jobs['beta-held'].f58} beta-held"]
    r = flux(inst, "pgrep", "-o", "{id.dec}", "beta")
    assert r.stdout.splitlines() == ["JOBID", str(int(jobs["beta-held"]))]
    # named formats shared with flux jobs: a header unless -n
    r = flux(inst, "pgrep", "-o", "long", "beta")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["JOBID", "QUEUE", "USER"]
    assert lines[1].split()[0] == jobs["beta-held"].f58
    assert "debug" in lines[1].split()
    r = flux(inst, "pgrep", "-o", "default", "beta")
    assert r.stdout == jobs["beta-held"].f58 + "\n"


def test_format_from_the_environment(inst, jobs):
    from click.testing import CliRunner

    from cli.main import main

    r = CliRunner().invoke(main, ["pgrep", "-n", "beta"],
                           env={"FLUX_URI": inst.uri,
                                "FLUX_PGREP_FORMAT_DEFAULT": "{name}:{queue}"})
    assert (r.exit_code, r.stdout) == (0, "beta-held:debug\n")


def test_usage_errors_exit_2(inst, jobs):
    r = flux(inst, "pgrep", "(unclosed")
    assert r.exit_code == 2
    assert r.stderr.startswith("flux-pgrep: expression error:")
    r = flux(inst, "pgrep", "one", "two")
    assert r.exit_code == 2
    assert "flux-pgrep: expression error: only one pattern" in r.stderr
    r = flux(inst, "pgrep", "-f", "bogus", "alpha")
    assert r.exit_code == 2
    assert r.stderr == "flux-pgrep: Invalid filter specified: bogus\n"
    r = flux(inst, "pgrep", "-o", "{nosuchfield}", "alpha")
    assert r.exit_code == 2
    assert r.stderr.startswith("flux-pgrep: Error in user format")
    assert flux(inst, "pgrep").exit_code == 2
    assert flux(inst, "pkill").exit_code == 2
    assert flux(inst, "pkill", "-a", "alpha").exit_code == 2   # -a is pgrep's only
    assert flux(inst, "pgrep", "-w", "alpha").exit_code == 2   # -w is pkill's only


def test_not_connected(inst):
    from click.testing import CliRunner

    from cli.main import main

    r = CliRunner().invoke(main, ["pgrep", "alpha"],
                           env={"FLUX_URI": "local:///nonexistent/socket"})
    assert r.exit_code == 1
    assert r.stderr.startswith("flux-pgrep: ")


# -- pkill ----------------------------------------------------------------------------------

def status(inst, jobid):
    r = flux(inst, "jobs", "-n", "-o", "{status}", str(jobid))
    assert r.exit_code == 0, r.output
    return r.stdout.strip()


def test_pkill_cancels_only_the_matched_jobs(inst):
    victims = [submit1(inst, "--job-name=victim-a", "--urgency=hold", "true"),
               submit1(inst, "--job-name=victim-b", "--urgency=hold", "true")]
    bystander = submit1(inst, "--job-name=bystander-a", "--urgency=hold", "true")
    r = flux(inst, "pkill", "^victim-")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert r.stderr == "flux-pkill: Canceled 2 jobs\n"
    for jobid in victims:
        wait_for(inst, jobid)
        exc = [e for e in eventlog(inst, jobid) if e["name"] == "exception"]
        assert exc and exc[0]["context"]["type"] == "cancel"
        assert status(inst, jobid) == "CANCELED"
    assert status(inst, bystander) == "PENDING"
    assert "exception" not in [e["name"] for e in eventlog(inst, bystander)]
    # pgrep no longer finds them; the bystander is still there
    assert flux(inst, "pgrep", "^victim-").exit_code == 1
    assert ids_of(flux(inst, "pgrep", "^bystander-a$")) == [bystander]


def test_pkill_no_match_exits_1_and_cancels_nothing(inst):
    keep = submit1(inst, "--job-name=keeper", "--urgency=hold", "true")
    r = flux(inst, "pkill", "^nothing-matches-this$")
    assert r.exit_code == 1
    assert r.stdout == ""
    # an inactive job is never considered
    done = submit1(inst, "--job-name=finished-one", "true")
    wait_for(inst, done)
    assert flux(inst, "pkill", "^finished-one$").exit_code == 1
    assert status(inst, keep) == "PENDING"
    assert flux(inst, "pkill", "^keeper$").exit_code == 0


def test_pkill_wait_returns_after_the_jobs_ended(inst):
    runner = submit1(inst, "--job-name=waitme-run", "-S", "system.exec.test.run_duration=600",
                     "true")
    wait_for(inst, runner, "start")
    held = submit1(inst, "--job-name=waitme-held", "--urgency=hold", "true")
    r = flux(inst, "pkill", "--wait", "^waitme-")
    assert r.exit_code == 0, r.output
    assert r.stderr == "flux-pkill: Canceled 2 jobs\n"
    for jobid in (runner, held):
        assert eventlog(inst, jobid)[-1]["name"] == "clean"


def test_pkill_count_and_range(inst):
    a = submit1(inst, "--job-name=limit-x", "--urgency=hold", "true")
    b = submit1(inst, "--job-name=limit-x", "--urgency=hold", "true")
    c = submit1(inst, "--job-name=limit-x", "--urgency=hold", "true")
    r = flux(inst, "pkill", "-c", "1", "^limit-x$")
    assert (r.exit_code, r.stderr) == (0, "flux-pkill: Canceled 1 job\n")
    left = set(ids_of(flux(inst, "pgrep", "^limit-x$")))
    assert len(left) == 2 and left <= {a, b, c}
    # a range holding one of the jobs left, with the pattern too: only that one
    x = min(left)
    r = flux(inst, "pkill", f"{x.f58}..{x.f58}", "limit")
    assert (r.exit_code, r.stderr) == (0, "flux-pkill: Canceled 1 job\n")
    assert set(ids_of(flux(inst, "pgrep", "^limit-x$"))) == left - {x}


def test_pkill_cancel_error_exits_1(inst):
    """-f inactive selects jobs that are already over: their cancel fails."""
    done = submit1(inst, "--job-name=already-over", "true")
    wait_for(inst, done)
    r = flux(inst, "pkill", "-f", "inactive", "^already-over$")
    assert r.exit_code == 1
    assert r.stderr.startswith(f"flux-pkill: {done.f58}: cancel: ")
    assert r.stderr.endswith("flux-pkill: Canceled 0 jobs\n")
