"""The JVM options of the tests' Spark processes (drivers, executors, Spark Connect), in one place.

C1 only and the serial collector: a JVM that runs tiny jobs starts and warms up sooner. With C1 alone the JVM
reserves 48 MB for compiled code (240 MB with both compilers); a test session's driver compiles more than that
(Spark, Delta, hundreds of small queries), and a full code cache disables the compiler for the rest of the
process ("CodeCache is full. Compiler has been disabled." on the JVM's stdout) — so the tests reserve 240 MB.
"""

QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=240m"
