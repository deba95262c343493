"""The boot test harness: QEMU command line, serial protocol, timeouts, verdict, report.

Standard library only, on purpose: this package also runs on its own inside
the pinned QEMU container (``python3 -m boottest run --config FILE --out DIR``,
see ``pipeline/bootvm.py``), so production and the tests (tests/boot/) share
one parser, one verdict and one VM supervisor.

* ``protocol``: what the booted host must show (``Expectation``), the guest
  script's config, the serial report block and its parser.
* ``qemu``: the VM (``Machine``, ``Media``), KVM detection, timeouts, argv.
* ``verdict``: the checks a run's reports must pass.
* ``harness``: ``RunConfig`` and ``run``: install, boot twice, judge, write
  ``report.json`` and ``serial.log``.
"""
