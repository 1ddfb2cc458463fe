# R survey::calibrate reference of tests/calibration/test_s51_journeys.py (eusilc persons, weights rb050).
#
# Run from the repository root:  Rscript tests/calibration/reference/s51_make_r_reference.R
# Needs r-base-core and r-cran-survey (4.1-1 made the stored file). Reads s51_eusilc_person_targets.csv (region x sex and
# age-group person counts, plus either the sum of py = py010n with 0 for children or the mean of py over ages >= 18,
# solved as sum((py - mean) * (age >= 18)) = 0); writes every 25th person's weight, per case and method.
suppressMessages(library(survey))
ref <- "tests/calibration/reference/"
e <- read.csv("src/microplex/datasets/data/eusilc.csv", stringsAsFactors = FALSE)
e$py <- ifelse(is.na(e$py010n), 0, e$py010n)
tg <- read.csv(paste0(ref, "s51_eusilc_person_targets.csv"), stringsAsFactors = FALSE)
ages <- list("age in [-inf, 18)" = c(-Inf, 18), "age in [18, 40)" = c(18, 40), "age in [40, 65)" = c(40, 65),
             "age in [65, inf)" = c(65, Inf))
methods <- list(linear = list("linear", c(-Inf, Inf)), raking = list("raking", c(-Inf, Inf)),
                linear_b = list("linear", c(0.97, 1.2)), raking_b = list("raking", c(0.97, 1.2)),
                logit_w = list("logit", c(0.9, 1.3)), logit_b = list("logit", c(0.97, 1.2)))
keep <- seq(1, nrow(e), by = 25)
out <- data.frame(row = keep - 1)
for (case in c("eu_person", "eu_mean")) {
  t <- tg[tg$case == case, ]
  cols <- list(); pop <- c()
  for (k in seq_len(nrow(t))) {
    f <- t$filter[k]
    if (t$aggregate[k] == "sum") { x <- e$py; v <- t$value[k] }
    else if (t$aggregate[k] == "mean") { x <- (e$py - t$value[k]) * (e$age >= 18); v <- 0 }
    else if (startsWith(f, "age in")) {
      if (f == names(ages)[1]) next  # the age groups add up to the region x sex total: R needs full rank
      r <- ages[[f]]; x <- as.numeric(e$age >= r[1] & e$age < r[2]); v <- t$value[k]
    } else {
      m <- regmatches(f, gregexpr("'[^']*'", f))[[1]]; m <- gsub("'", "", m)
      x <- as.numeric(e$db040 == m[1] & e$rb090 == m[2]); v <- t$value[k]
    }
    cols[[length(cols) + 1]] <- x; pop <- c(pop, v)
  }
  mm <- do.call(cbind, cols); colnames(mm) <- paste0("x", seq_len(ncol(mm)))
  des <- svydesign(ids = ~1, weights = ~d, data = data.frame(mm, d = e$rb050))
  fml <- as.formula(paste("~ 0 +", paste(colnames(mm), collapse = " + ")))
  tag <- if (case == "eu_person") "sum" else "mean"
  for (nm in names(methods)) {
    cal <- calibrate(des, fml, population = pop, calfun = methods[[nm]][[1]], bounds = methods[[nm]][[2]],
                     epsilon = 1e-12, maxit = 500)
    out[[paste0(tag, "_", nm)]] <- sprintf("%.17g", weights(cal)[keep])
  }
}
write.csv(out, paste0(ref, "s51_eusilc_person_weights.csv"), row.names = FALSE, quote = FALSE)
cat("R", R.version$major, R.version$minor, "survey", as.character(packageVersion("survey")), "\n")
