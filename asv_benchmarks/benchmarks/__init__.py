"""asv benchmarks of seqclf; configuration in ../asv.conf.json and config.json."""
