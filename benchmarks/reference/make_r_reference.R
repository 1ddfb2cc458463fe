# Reference weights from R survey::calibrate for tests/calibration/test_reference.py.
#
# Run from the repository root:  Rscript benchmarks/reference/make_r_reference.R
# Needs: apt-get install -y r-base-core r-cran-survey. Writes tests/calibration/reference/*.csv.
#
# Targets are made consistent and feasible by construction: they are totals of the records under
# randomly perturbed weights d * f with f in [0.7, 1.4] (seeded). The Python tests use every category of
# every margin (redundant but consistent); R gets a full-rank model matrix (first category of each
# later margin dropped where margins are redundant), which spans the same constraints, so the calibrated weights must coincide.
suppressMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[1] else "src/microplex/datasets/data"
out_dir <- "tests/calibration/reference"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
set.seed(20261125)
EPS <- 1e-13
fmt <- function(x) trimws(formatC(x, digits = 17, format = "g"))

# Builds indicator columns for a list of margins; returns list(mm, filters) with one column per category.
margin_columns <- function(df, margins) {
  cols <- list(); filters <- character(0)
  for (mg in margins) {
    for (k in seq_along(mg$filters)) {
      cols[[length(cols) + 1]] <- as.numeric(mg$test(df, k))
      filters <- c(filters, mg$filters[k])
    }
  }
  mm <- do.call(cbind, cols)
  colnames(mm) <- paste0("x", seq_len(ncol(mm)))
  list(mm = mm, filters = filters)
}

run_methods <- function(mm, d, pop, keep, methods) {
  df <- data.frame(mm[, keep, drop = FALSE], d = d)
  des <- svydesign(ids = ~1, weights = ~d, data = df)
  fml <- as.formula(paste("~ 0 +", paste(colnames(mm)[keep], collapse = " + ")))
  out <- list()
  for (nm in names(methods)) {
    m <- methods[[nm]]
    cal <- calibrate(des, fml, population = pop[keep], calfun = m$calfun, bounds = m$bounds,
                     epsilon = EPS, maxit = 500)
    out[[nm]] <- weights(cal)
  }
  out
}

# Bounds are chosen to bind (the unbounded ratios span about [0.89, 1.12] and [0.95, 1.10]).
make_methods <- function(b, lb) list(
  linear = list(calfun = "linear", bounds = c(-Inf, Inf)),
  raking = list(calfun = "raking", bounds = c(-Inf, Inf)),
  linear_bounded = list(calfun = "linear", bounds = b),
  raking_bounded = list(calfun = "raking", bounds = b),
  logit = list(calfun = "logit", bounds = lb)
)

# ---------------------------------------------------------------- census2000: persons
cen <- read.csv(file.path(data_dir, "census2000_pums.csv"), stringsAsFactors = FALSE)
cen$row <- seq_len(nrow(cen)) - 1L
states <- c("Oregon", "Kansas", "Utah")
sub <- cen[cen$state %in% states, ]
edu <- list(c(-Inf, 12), c(12, 13), c(13, 16), c(16, Inf))
exg <- list(c(-Inf, 10), c(10, 20), c(20, 30), c(30, Inf))
rng <- function(lo, hi) paste0("[", ifelse(is.finite(lo), lo, "-inf"), ", ", ifelse(is.finite(hi), hi, "inf"), ")")
inr <- function(x, r) x >= r[1] & x < r[2]
se <- expand.grid(e = seq_along(edu), s = seq_along(states))
margins <- list(
  list(filters = sprintf("state == '%s' & educ in %s", states[se$s], sapply(se$e, function(e) rng(edu[[e]][1], edu[[e]][2]))),
       test = function(df, k) df$state == states[se$s[k]] & inr(df$educ, edu[[se$e[k]]])),
  list(filters = sprintf("exper in %s", sapply(exg, function(r) rng(r[1], r[2]))),
       test = function(df, k) inr(df$exper, exg[[k]]))
)
mc <- margin_columns(sub, margins)
sums <- sapply(states, function(s) (sub$state == s) * sub$lweekinc)
colnames(sums) <- paste0("s", seq_along(states))
mm <- cbind(mc$mm, sums)
d <- rep(100, nrow(sub))
f <- runif(nrow(sub), 0.85, 1.2)
pop <- colSums(mm * d * f)
keep <- setdiff(seq_len(ncol(mm)), nrow(se) + 1)  # drop the first exper category (full rank)
w <- run_methods(mm, d, pop, keep, make_methods(c(0.92, 1.08), c(0.88, 1.14)))
tg <- data.frame(filter = c(mc$filters, sprintf("state == '%s'", states)),
                 aggregate = c(rep("count", length(mc$filters)), rep("sum", length(states))),
                 variable = c(rep(NA, length(mc$filters)), rep("lweekinc", length(states))),
                 value = fmt(pop))
write.csv(tg, file.path(out_dir, "census_targets.csv"), row.names = FALSE, na = "")
wd <- data.frame(row = sub$row, d = d)
for (nm in names(w)) wd[[nm]] <- fmt(w[[nm]])
write.csv(wd, file.path(out_dir, "census_weights.csv"), row.names = FALSE, quote = FALSE)

# ---------------------------------------------------------------- eusilc: households, person targets
eu <- read.csv(file.path(data_dir, "eusilc.csv"), stringsAsFactors = FALSE)
regions <- c("Salzburg", "Vorarlberg", "Burgenland")
pe <- eu[eu$db040 %in% regions, ]
ages <- list(c(-Inf, 18), c(18, 40), c(40, 65), c(65, Inf))
sexes <- c("female", "male")
cells <- expand.grid(a = seq_along(ages), s = seq_along(sexes), r = seq_along(regions))
pmargin <- list(list(
  filters = sprintf("db040 == '%s' & rb090 == '%s' & age in %s", regions[cells$r], sexes[cells$s],
                    sapply(cells$a, function(a) rng(ages[[a]][1], ages[[a]][2]))),
  test = function(df, k) df$db040 == regions[cells$r[k]] & df$rb090 == sexes[cells$s[k]] & inr(df$age, ages[[cells$a[k]]])
))
pc <- margin_columns(pe, pmargin)
hh_mm <- rowsum(pc$mm, pe$db030, reorder = FALSE)          # persons per cell, per household
hh <- pe[!duplicated(pe$db030), ]
stopifnot(all(rownames(hh_mm) == as.character(hh$db030)))
hs <- list(c(1, 2), c(2, 3), c(3, 4), c(4, 5), c(5, Inf))
hcols <- sapply(hs, function(r) as.numeric(inr(hh$hsize, r)))
colnames(hcols) <- paste0("h", seq_along(hs))
mm <- cbind(hh_mm, hcols)
d <- hh$db090
f <- runif(nrow(hh), 0.85, 1.2)
pop <- colSums(mm * d * f)
keep <- seq_len(ncol(mm))  # persons per cell and households by size: not redundant, full rank
w <- run_methods(mm, d, pop, keep, make_methods(c(0.96, 1.08), c(0.94, 1.09)))
tg <- data.frame(filter = c(pc$filters, sprintf("hsize in %s", sapply(hs, function(r) rng(r[1], r[2])))),
                 aggregate = "count",
                 entity = c(rep("person", ncol(hh_mm)), rep("household", length(hs))),
                 value = fmt(pop))
write.csv(tg, file.path(out_dir, "eusilc_targets.csv"), row.names = FALSE)
wd <- data.frame(db030 = hh$db030, d = fmt(d))
for (nm in names(w)) wd[[nm]] <- fmt(w[[nm]])
write.csv(wd, file.path(out_dir, "eusilc_weights.csv"), row.names = FALSE, quote = FALSE)
cat("R", R.version$major, R.version$minor, "survey", as.character(packageVersion("survey")), "\n")
