"""Eight fake CPU devices for the mesh tests (set before JAX starts), a compilation cache, a PRNG key."""

import os

os.environ["XLA_FLAGS"] = (
  os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tempfile  # noqa: E402
import zlib  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

# Many tests compile the same small programs (smoke runs of one config, resumed runs); a shared
# on-disk compilation cache lets each xdist worker reuse what another compiled.
jax.config.update(
  "jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), "genjax-test-jax-cache")
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture
def key(request):
  """A key that differs per test (hash of the test's name) but is the same on every run."""
  return jax.random.key(zlib.crc32(request.node.name.encode()))
