// jemalloc's start-up options, compiled into billingd (jemalloc reads the
// executable's `malloc_conf`; MALLOC_CONF in the environment still overrides
// it, e.g. MALLOC_CONF=thp:never).
//
// thp:always: jemalloc asks for transparent huge pages (madvise) on the
// memory it maps. RocksDB's memtables fill arena blocks of megabytes, and on
// this kind of (virtualised) machine a 4 KiB page fault on each new page was
// about a tenth of ingest's CPU; 2 MiB pages take 512 times fewer faults.
// Kernels with transparent_hugepage=never ignore it. README "Measured
// figures" has the comparison.
//
// No <jemalloc/jemalloc.h> here: it declares the pointer itself mutable.

extern "C" const char* const malloc_conf = "thp:always,metadata_thp:auto";
