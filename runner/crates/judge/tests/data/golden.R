# Golden values for the judge's Mann-Whitney confidence intervals (runner/crates/judge/src/mann_whitney.rs).
#
# Regenerate with:  Rscript runner/crates/judge/tests/data/golden.R > runner/crates/judge/tests/data/golden.json
#
# Each case records the inputs and what R's normal-approximation path answers:
#   wilcox.test(x, y, conf.int = TRUE, conf.level = conf, exact = FALSE, correct = TRUE)
# The data are generated from a fixed seed, so the file is reproducible. Numbers are JSON strings
# with 17 significant digits: Rust's `str::parse::<f64>` reads back the exact doubles R used
# (serde_json's default float parser may be off by an ulp, which moves ties).
set.seed(20261122)

num <- function(v) {
  sprintf('"%.17g"', v)
}
vec <- function(v) paste0("[", paste(num(v), collapse = ","), "]")

cases <- list()
add <- function(name, x, y, conf) {
  r <- suppressWarnings(wilcox.test(x, y, conf.int = TRUE, conf.level = conf,
                                    exact = FALSE, correct = TRUE))
  cases[[length(cases) + 1]] <<- sprintf(
    '  {"name": "%s", "conf": %s, "x": %s, "y": %s, "lower": %s, "upper": %s, "estimate": %s, "statistic": %s, "p_value": %s}',
    name, num(conf), vec(x), vec(y), num(r$conf.int[1]), num(r$conf.int[2]),
    num(unname(r$estimate)), num(unname(r$statistic)), num(r$p.value))
}

# Continuous samples, no ties, several sizes and shifts.
add("normal-same-30", rnorm(30, 10, 2), rnorm(30, 10, 2), 0.98)
add("normal-shift-up-30", rnorm(30, 12, 2), rnorm(30, 10, 2), 0.98)
add("normal-shift-down-50", rnorm(50, 8, 2), rnorm(40, 10, 2), 0.98)
add("normal-95-20", rnorm(20, 10.5, 1), rnorm(25, 10, 1), 0.95)
add("lognormal-latency-200", rlnorm(200, log(0.12), 0.3), rlnorm(180, log(0.11), 0.3), 0.98)
add("tiny-5-6", rnorm(5, 1, 1), rnorm(6, 0, 1), 0.98)
add("exp-90", rexp(60, 1), rexp(70, 1.2), 0.90)
# Ties: rounded values, counts, sparse error counts (mostly zeros, kayenta#426).
add("rounded-ties-40", round(rnorm(40, 10, 2)), round(rnorm(40, 11, 2)), 0.98)
add("poisson-counts-60", rpois(60, 3), rpois(60, 4), 0.98)
add("sparse-errors-60", rpois(60, 0.2), rpois(60, 0.05), 0.98)
add("half-tied-30", c(rep(1, 15), rnorm(15, 2, 0.5)), c(rep(1, 10), rnorm(20, 1.5, 0.5)), 0.98)
# Large samples: the statistic's scale grows, the root finder's tolerance stays 1e-4.
add("large-1000", rnorm(1000, 100.2, 5), rnorm(1000, 100, 5), 0.98)
add("scale-1e-3", rnorm(40, 0.0012, 0.0002), rnorm(40, 0.001, 0.0002), 0.98)
add("scale-1e6", rnorm(40, 1.2e6, 1e5), rnorm(40, 1e6, 1e5), 0.98)

cat("[\n", paste(unlist(cases), collapse = ",\n"), "\n]\n", sep = "")
