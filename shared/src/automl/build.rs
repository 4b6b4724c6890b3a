//! One build, end to end, as the sequence of phases [`build`] reads as: plan (target, task,
//! metric), split a holdout, prepare features, search candidates, select (or blend) the model,
//! evaluate it on the holdout, refit it on every row, weigh the inputs, describe the result.
//!
//! Determinism: every random choice is seeded from the request's seed, and candidates are tried
//! in a fixed order, so the same table and request give the same pipeline, bit for bit, as long
//! as the time budget cuts nothing short (the budget is a wall clock, so a build that runs out
//! of time may stop at a different candidate on a slower machine, and a large table may deliver
//! the search's fit of the winner where a faster machine refits it on every row).

use super::describe::{self, Summary, task_phrase};
use super::features::{self, DroppedColumn, FeatureError, FeaturePlan};
use super::importance::input_importance;
use super::metrics::{self, Evaluation};
use super::output::{BuildOutput, FeatureImportance, HoldoutEvaluation, schemas};
use super::pipeline::{Model, Pipeline};
use super::plan::{PlanError, TablePlan};
use super::refit::{self, FittedModel};
use super::request::BuildRequest;
use super::search::{self, LeaderboardEntry, SearchData, SearchError, SearchFit, Searched};
use super::select::{self, Choice};
use super::split;
use crate::ingest::Table;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Share of the rows held out to report honest metrics.
const HOLDOUT_FRACTION: f64 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Info,
    Warn,
}

/// Hears how a build goes: progress (0–100, never decreasing) and log lines for the build log.
pub trait BuildObserver: Sync {
    fn progress(&self, percent: u8);
    fn log(&self, level: LogLevel, message: &str);
}

/// An observer that ignores everything (tests, benches).
pub struct SilentObserver;

impl BuildObserver for SilentObserver {
    fn progress(&self, _percent: u8) {}
    fn log(&self, _level: LogLevel, _message: &str) {}
}

#[derive(Debug, Error)]
pub enum BuildError {
    /// The plan refused the build: the same refusal `plan_build` gives.
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("no usable feature columns remain besides the target `{target}` (dropped: {dropped})")]
    NoFeatures { target: String, dropped: String },
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error(transparent)]
    Search(#[from] SearchError),
}

impl BuildError {
    /// Whether the dataset or request cannot work (SPEC: a 422), as opposed to a failure of ours.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, BuildError::Search(_) | BuildError::Features(_))
    }
}

/// Builds a model from `table` as `request` asks, telling `observer` how it goes.
pub fn build(
    table: &Table,
    request: &BuildRequest,
    observer: &dyn BuildObserver,
) -> Result<BuildOutput, BuildError> {
    let run = Run::start(table, request, observer);
    let plan = run.resolve_target_and_task()?;
    let rows = run.split_holdout(&plan);
    let prepared = run.prepare_features(&plan, &rows)?;
    let searched = run.search_candidates(&plan, &rows, &prepared)?;
    let choice = run.select_model(&plan, &rows, &prepared, &searched)?;
    let mut searched = searched;
    let kept = Kept::take(&mut searched, &choice);
    // The rows the holdout-scored model learned from: the search's split, or the training part.
    let scored_rows = kept.as_ref().map_or(rows.train.len(), |k| k.rows);
    let (holdout_metrics, evaluation) =
        run.evaluate_on_holdout(&plan, &rows, &prepared, &choice, kept.as_ref())?;
    let delivered = run.refit_on_every_row(&plan, &rows, &prepared, &choice, kept)?;
    let importance = run.weigh_inputs(&prepared, &delivered);
    Ok(run.describe(Built {
        plan,
        rows,
        prepared,
        leaderboard: searched.leaderboard,
        choice,
        holdout_metrics,
        evaluation,
        delivered,
        importance,
        scored_rows,
    }))
}

/// One build under way: its inputs, its observer and its clock.
struct Run<'a> {
    table: &'a Table,
    request: &'a BuildRequest,
    observer: &'a dyn BuildObserver,
    started: Instant,
    budget: Duration,
}

/// Which labelled rows train and which are held out (positions in the plan's labelled rows),
/// and their encoded targets.
struct Rows {
    train: Vec<usize>,
    holdout: Vec<usize>,
    y_train: Vec<f64>,
    y_holdout: Vec<f64>,
}

/// The feature plan and the training rows' feature columns.
struct Prepared {
    plan: FeaturePlan,
    train_columns: Vec<Vec<f32>>,
}

/// The delivered pipeline and, per model, the feature importance it reports.
struct Delivered {
    pipeline: Pipeline,
    per_model_importance: Vec<(f64, Vec<f64>)>,
    /// Refit on every labelled row (else the search's fit of the winner is delivered).
    refit_on_every_row: bool,
}

/// What the last phase describes.
struct Built<'t> {
    plan: TablePlan<'t>,
    rows: Rows,
    prepared: Prepared,
    leaderboard: Vec<LeaderboardEntry>,
    choice: Choice,
    holdout_metrics: BTreeMap<String, f64>,
    evaluation: HoldoutEvaluation,
    delivered: Delivered,
    importance: Vec<FeatureImportance>,
    /// The rows the model scored on the holdout learned from.
    scored_rows: usize,
}

impl<'a> Run<'a> {
    fn start(table: &'a Table, request: &'a BuildRequest, observer: &'a dyn BuildObserver) -> Self {
        let run = Run {
            table,
            request,
            observer,
            started: Instant::now(),
            budget: request.budget(),
        };
        run.observer.progress(0);
        run.info(&format!(
            "data: {} rows, {} columns",
            table.n_rows,
            table.columns.len()
        ));
        run
    }

    fn info(&self, message: &str) {
        self.observer.log(LogLevel::Info, message);
    }

    /// Candidates start until 60% of the budget is spent.
    fn search_deadline(&self) -> Instant {
        self.started + self.budget.mul_f64(0.6)
    }

    /// The search's training stops (keeping what it has) at 85% of the budget: scoring the
    /// holdout (a fifth of the rows, with every round of the chosen models) and describing the
    /// model take the rest.
    fn hard_deadline(&self) -> Instant {
        self.started + self.budget.mul_f64(0.85)
    }

    /// The delivered model is fit by 97% of the budget.
    fn refit_deadline(&self) -> Instant {
        self.started + self.budget.mul_f64(0.97)
    }

    /// Phase 1: the target, the task and the selection metric; refused when too few rows have a
    /// target value.
    fn resolve_target_and_task(&self) -> Result<TablePlan<'a>, BuildError> {
        let plan = TablePlan::resolve(self.table, self.request)?;
        self.info(&format!(
            "target: `{}`, task: {}",
            plan.target,
            task_phrase(&plan.task)
        ));
        let unlabelled = self.table.n_rows - plan.labelled.len();
        if unlabelled > 0 {
            self.observer.log(
                LogLevel::Warn,
                &format!(
                    "{unlabelled} rows have no value for `{}` and are left out",
                    plan.target
                ),
            );
        }
        plan.check_rows()?;
        Ok(plan)
    }

    /// Phase 2: a seeded holdout, stratified by class for classification.
    fn split_holdout(&self, plan: &TablePlan) -> Rows {
        let classes: Option<Vec<usize>> = plan
            .task
            .is_classification()
            .then(|| plan.y.iter().map(|&v| v as usize).collect());
        let (train, holdout) = split::holdout_split(
            plan.labelled.len(),
            classes.as_deref(),
            HOLDOUT_FRACTION,
            self.request.seed,
        );
        Rows {
            y_train: targets(plan, &train),
            y_holdout: targets(plan, &holdout),
            train,
            holdout,
        }
    }

    /// Phase 3: which columns become which features (decided on the training rows), and the
    /// training rows' feature columns.
    fn prepare_features(&self, plan: &TablePlan, rows: &Rows) -> Result<Prepared, BuildError> {
        let train_rows = table_rows(plan, &rows.train);
        let feature_plan = features::plan_features(self.table, &plan.target, &train_rows);
        for DroppedColumn { name, reason } in &feature_plan.dropped {
            self.info(&format!("dropped column `{name}`: {}", reason.explain()));
        }
        if feature_plan.features.is_empty() {
            let dropped = feature_plan
                .dropped
                .iter()
                .map(|d| d.name.clone())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(BuildError::NoFeatures {
                target: plan.target.clone(),
                dropped,
            });
        }
        self.info(&format!(
            "features: {} from {} columns; {} rows for training, {} held out",
            feature_plan.features.len(),
            feature_plan.inputs.len(),
            rows.train.len(),
            rows.holdout.len()
        ));
        self.observer.progress(5);
        let train_columns = self.feature_columns(&feature_plan, &train_rows)?;
        Ok(Prepared {
            plan: feature_plan,
            train_columns,
        })
    }

    /// Phase 4: every candidate scored on validation splits of the training rows.
    fn search_candidates(
        &self,
        plan: &TablePlan,
        rows: &Rows,
        prepared: &Prepared,
    ) -> Result<Searched, BuildError> {
        let data = search_data(plan, prepared, &prepared.train_columns, &rows.y_train);
        let metric = plan.metric;
        let mut on_candidate = |entry: &LeaderboardEntry, i: usize, total: usize| {
            self.info(&format!(
                "candidate {}/{total}: {} ({}) validation {} = {:.5} in {:.2}s",
                i + 1,
                entry.family,
                entry.parameters,
                metric.name(),
                entry.validation_score,
                entry.fit_seconds
            ));
            self.observer
                .progress((5 + (70 * (i + 1) / total.max(1))).min(75) as u8);
        };
        Ok(search::evaluate_candidates(
            &data,
            metric,
            self.request.seed,
            self.request.max_iterations,
            self.search_deadline(),
            self.hard_deadline(),
            &mut on_candidate,
        )?)
    }

    /// Phase 5: the best candidate, blend or ensemble on the validation margins.
    fn select_model(
        &self,
        plan: &TablePlan,
        rows: &Rows,
        prepared: &Prepared,
        searched: &Searched,
    ) -> Result<Choice, BuildError> {
        let data = search_data(plan, prepared, &prepared.train_columns, &rows.y_train);
        let choice = select::select(&data, plan.metric, searched)?;
        self.info(&format!(
            "chosen: {}, validation {} = {:.5}",
            choice.algorithm(&plan.task),
            plan.metric.name(),
            choice.validation_score
        ));
        Ok(choice)
    }

    /// Phase 6: honest metrics, from the winner as the search fit it (`kept`, on one validation
    /// split of a larger table) or refit on the training part (k folds), scored on the held-out
    /// rows.
    fn evaluate_on_holdout(
        &self,
        plan: &TablePlan,
        rows: &Rows,
        prepared: &Prepared,
        choice: &Choice,
        kept: Option<&Kept>,
    ) -> Result<(BTreeMap<String, f64>, HoldoutEvaluation), BuildError> {
        let refit;
        let fitted = match kept {
            Some(kept) => &kept.models[..],
            None => {
                let train = search_data(plan, prepared, &prepared.train_columns, &rows.y_train);
                // The search may have trained up to its own deadline: this refit (as fast as
                // a fold) gets at least 5% of the budget, and leaves the last 8%.
                let deadline = self
                    .hard_deadline()
                    .max(Instant::now() + self.budget.mul_f64(0.05))
                    .min(self.started + self.budget.mul_f64(0.92));
                refit = refit::refit(&train, choice, self.request.seed, deadline)?;
                &refit[..]
            }
        };
        let holdout_columns =
            self.feature_columns(&prepared.plan, &table_rows(plan, &rows.holdout))?;
        let holdout = search_data(plan, prepared, &holdout_columns, &rows.y_holdout);
        let margins = refit::blended_margins(fitted, &holdout);
        let evaluation = Evaluation::from_margins(&plan.task, rows.y_holdout.clone(), &margins);
        let holdout_metrics = metrics::report(&plan.task, evaluation.outcome());
        let summary: Vec<String> = holdout_metrics
            .iter()
            .map(|(k, v)| format!("{k} = {v:.4}"))
            .collect();
        self.info(&format!(
            "holdout ({} rows): {}",
            rows.holdout.len(),
            summary.join(", ")
        ));
        self.observer.progress(85);
        Ok((holdout_metrics, evaluation.to_view(plan.task.labels())))
    }

    /// Phase 7: the delivered model learns from every labelled row, with the configuration
    /// that won (boosting rounds scaled to the larger training set), when that fits in the
    /// budget; otherwise the search's own fit of it (`kept`) is delivered.
    fn refit_on_every_row(
        &self,
        plan: &TablePlan,
        rows: &Rows,
        prepared: &Prepared,
        choice: &Choice,
        kept: Option<Kept>,
    ) -> Result<Delivered, BuildError> {
        let n_all = plan.labelled.len();
        let scale = n_all as f64 / rows.train.len().max(1) as f64;
        let final_choice = refit::scale_rounds(choice, scale);
        let refit_by = |deadline: Instant| -> Result<Vec<FittedModel>, BuildError> {
            let all_columns = self.feature_columns(&prepared.plan, &plan.labelled)?;
            let full = search_data(plan, prepared, &all_columns, &plan.y);
            Ok(refit::refit(
                &full,
                &final_choice,
                self.request.seed,
                deadline,
            )?)
        };
        let (fitted, refit_on_every_row) = match kept {
            Some(kept) => {
                let kept_rows = kept.rows;
                let estimate = kept.refit_estimate(n_all, scale);
                let left = self
                    .refit_deadline()
                    .saturating_duration_since(Instant::now());
                if estimate > left {
                    self.info(&format!(
                        "delivering the model as the search fit it on {kept_rows} rows: refitting \
                         on all {n_all} would take about {:.0}s, {:.0}s of the time budget are left",
                        estimate.as_secs_f64(),
                        left.as_secs_f64()
                    ));
                    (kept.models, false)
                } else {
                    let refit = refit_by(self.refit_deadline())?;
                    if refit.iter().any(|f| f.truncated) {
                        self.info(&format!(
                            "delivering the model as the search fit it on {kept_rows} rows: the \
                             refit on all {n_all} ran out of time"
                        ));
                        (kept.models, false)
                    } else {
                        (refit, true)
                    }
                }
            }
            None => {
                // Small tables (k folds): the refit is as fast as one fold, so it gets at least
                // a tenth of the budget even when the search took more than its share, and
                // stops at the budget.
                let deadline = self
                    .refit_deadline()
                    .max(Instant::now() + self.budget.mul_f64(0.1))
                    .min(self.started + self.budget);
                (refit_by(deadline)?, true)
            }
        };
        self.observer.progress(95);
        let per_model_importance = fitted
            .iter()
            .map(|f| (f.weight, f.feature_importance.clone()))
            .collect();
        let FeaturePlan {
            inputs, features, ..
        } = &prepared.plan;
        let pipeline = Pipeline {
            target: plan.target.clone(),
            task: plan.task.clone(),
            inputs: inputs.clone(),
            features: features.clone(),
            weights: fitted.iter().map(|f| f.weight).collect(),
            models: fitted.into_iter().map(|f: FittedModel| f.model).collect(),
        };
        Ok(Delivered {
            pipeline,
            per_model_importance,
            refit_on_every_row,
        })
    }

    /// Phase 8: how much each input column matters, from the delivered models.
    fn weigh_inputs(&self, prepared: &Prepared, delivered: &Delivered) -> Vec<FeatureImportance> {
        input_importance(
            &prepared.plan.inputs,
            &prepared.plan.features,
            &delivered.per_model_importance,
        )
        .into_iter()
        .map(|(feature, importance)| FeatureImportance {
            feature,
            importance,
        })
        .collect()
    }

    /// Phase 9: the schemas, the plain-language description and the output record.
    fn describe(&self, built: Built) -> BuildOutput {
        let Built {
            plan,
            rows,
            prepared,
            leaderboard,
            choice,
            holdout_metrics,
            evaluation,
            delivered,
            importance,
            scored_rows,
        } = built;
        let algorithm = choice.algorithm(&plan.task);
        let (input_schema, output_schema) =
            schemas(&prepared.plan, &plan.target, plan.column.kind, &plan.task);
        let description = describe::describe(&Summary {
            target: &plan.target,
            task: &plan.task,
            algorithm: &algorithm,
            pipeline: &delivered.pipeline,
            importance: &importance,
            holdout_metrics: &holdout_metrics,
            train_rows: scored_rows,
            holdout_rows: rows.holdout.len(),
            refit_on_every_row: delivered.refit_on_every_row,
            dropped: &prepared.plan.dropped,
        });
        let output = BuildOutput {
            task_kind: plan.task.kind_name(),
            metric: plan.metric.name(),
            validation_score: choice.validation_score,
            holdout_metrics,
            evaluation,
            feature_importance: importance,
            leaderboard,
            algorithm,
            description,
            input_schema,
            output_schema,
            dropped_columns: prepared
                .plan
                .dropped
                .iter()
                .map(|d| (d.name.clone(), d.reason.explain().to_string()))
                .collect(),
            train_rows: rows.train.len(),
            holdout_rows: rows.holdout.len(),
            build_seconds: self.started.elapsed().as_secs_f64(),
            pipeline: delivered.pipeline,
            task: plan.task,
            target: plan.target,
        };
        self.info(&format!("model ready in {:.2}s", output.build_seconds));
        self.observer.progress(100);
        output
    }

    fn feature_columns(
        &self,
        plan: &FeaturePlan,
        table_rows: &[usize],
    ) -> Result<Vec<Vec<f32>>, FeatureError> {
        features::feature_columns(&plan.inputs, &plan.features, self.table, table_rows)
    }
}

/// The chosen members as the search fit them on the training part of its one validation split:
/// what scores the holdout, and what is delivered when refitting on every row would not fit in
/// the budget.
struct Kept {
    models: Vec<FittedModel>,
    /// The rows they were fit on.
    rows: usize,
    /// How long the search took to fit each, and whether it is trees.
    fit_seconds: Vec<(f64, bool)>,
}

impl Kept {
    /// Takes the chosen members' search fits out of `searched`, when the search kept every one
    /// (one validation split); the other candidates' fits are dropped either way. Members are
    /// distinct candidates, so each fit is taken once.
    fn take(searched: &mut Searched, choice: &Choice) -> Option<Kept> {
        let mut fits: Vec<Option<SearchFit>> = searched
            .evaluated
            .iter_mut()
            .map(|e| e.fit.take())
            .collect();
        let mut models = Vec::new();
        let mut fit_seconds = Vec::new();
        let mut rows = 0;
        for member in &choice.members {
            let at = searched
                .evaluated
                .iter()
                .position(|e| e.spec == member.spec)?;
            let fit = fits[at].take()?;
            rows = fit.rows;
            fit_seconds.push((fit.seconds, matches!(fit.model.inner(), Model::Trees(_))));
            models.push(FittedModel {
                model: fit.model,
                weight: member.weight,
                feature_importance: fit.feature_importance,
                truncated: false,
            });
        }
        Some(Kept {
            models,
            rows,
            fit_seconds,
        })
    }

    /// How long refitting on `n_rows` rows should take: time grows with the rows and, for
    /// trees, with the rounds (the refit's are 1.1 × the best round, times `round_scale`).
    fn refit_estimate(&self, n_rows: usize, round_scale: f64) -> Duration {
        let rows = n_rows as f64 / self.rows.max(1) as f64;
        let seconds: f64 = self
            .fit_seconds
            .iter()
            .map(|&(s, trees)| s * rows * if trees { 1.1 * round_scale } else { 1.0 })
            .sum();
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    }
}

/// The table rows at `positions` among the labelled rows.
fn table_rows(plan: &TablePlan, positions: &[usize]) -> Vec<usize> {
    positions.iter().map(|&p| plan.labelled[p]).collect()
}

/// The encoded targets at `positions` among the labelled rows.
fn targets(plan: &TablePlan, positions: &[usize]) -> Vec<f64> {
    positions.iter().map(|&p| plan.y[p]).collect()
}

fn search_data<'d>(
    plan: &'d TablePlan,
    prepared: &'d Prepared,
    columns: &'d [Vec<f32>],
    y: &'d [f64],
) -> SearchData<'d> {
    SearchData {
        task: &plan.task,
        features: &prepared.plan.features,
        cols: columns,
        y,
    }
}
