# Every target creates the virtual environment first when it is missing or older than pyproject.toml.
VENV ?= .venv
PYTHON ?= python3
RENTALS ?= 1000000 5000000 10000000
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.DEFAULT_GOAL := help
TOOLS ?= .venv-tools
.PHONY: help install demo test lint check-template format bench clean invoke-gate build

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Spark needs Java 17: install OpenJDK 17 (e.g. apt-get install openjdk-17-jre-headless)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# A small local run leaves the archive of Spark's classes that later local runs start from (docs/benchmarks.md).
	@echo "Warming up: one small local run, so that later Spark runs start faster"
	@out=$$(mktemp -d) && { $(BIN)/rental-analytics demo --rentals 2000 --output "$$out" > "$$out.log" 2>&1 \
		|| { cat "$$out.log"; rm -rf "$$out" "$$out.log"; exit 1; }; } && rm -rf "$$out" "$$out.log"
	@touch $(STAMP)

demo: $(STAMP) ## Generate a sample batch and run the whole car-rental pipeline locally
	$(BIN)/rental-analytics demo --output demo-output

test: $(STAMP) $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed ## Lint, type-check, check the template, sam build, run every test
	@# The checks and `sam build` side by side: the build waits on the package index, the checks on the CPU.
	$(MAKE) --no-print-directory -j3 lint check-template build
	@# One worker per core (at most four, each with its own Spark): on 2 cores, 4 workers took longer than 2
	@# (docs/benchmarks.md, "The test suite").
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist worksteal

lint: $(STAMP) ## ruff (lint and format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@# Every handler module is called app.py, so each is checked on its own.
	for handler in functions/*/app.py; do $(BIN)/mypy "$$handler" || exit 1; done

# The template checkers live in venvs of their own: SAM CLI and checkov pin libraries the tests need newer.
$(TOOLS)/sam/.installed:
	$(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet aws-sam-cli
	@touch $@

$(TOOLS)/checkov/.installed:
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet checkov
	@touch $@

install: $(STAMP) $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed ## Create the virtual environments of the project and of the template checkers

TEMPLATES := template.yaml stacks/car_rental.yaml stacks/apartments.yaml

check-template: $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed ## sam validate --lint, cfn-lint and checkov on the root and nested templates
	for template in $(TEMPLATES); do \
	  SAM_CLI_TELEMETRY=0 $(TOOLS)/sam/bin/sam validate --lint --region us-east-1 -t "$$template" || exit 1; \
	done
	$(TOOLS)/sam/bin/cfn-lint $(TEMPLATES)
	@# --skip-download: checkov's policy metadata lives on the network; the checks themselves are local.
	$(TOOLS)/checkov/bin/checkov $(addprefix -f ,$(TEMPLATES)) --framework cloudformation --compact --quiet --skip-download

# sam build needs the Lambda runtime's Python (3.12) on the PATH: pyenv's when there is one (a pyenv shim would
# answer for a version pyenv has not selected), otherwise whatever python3.12 the PATH has.
PYTHON312 ?= $(shell p=$$(ls -d "$$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12 2>/dev/null | tail -1); \
	[ -n "$$p" ] && echo "$$p" || command -v python3.12)
BUILT := .aws-sam/build/template.yaml
BUILD_INPUTS := template.yaml samconfig.toml Makefile $(wildcard stacks/*.yaml statemachine/*.json functions/*/* \
	spark_scripts/*.py) $(shell find rental_analytics -name '*.py' -o -name '*.sql')

build: $(BUILT) ## sam build: the functions, the layer and the shipped Spark code, as AWS runs them (.aws-sam/build)
$(BUILT): $(TOOLS)/sam/.installed $(BUILD_INPUTS)
	@test -n "$(PYTHON312)" || { echo "sam build needs python3.12 (the Lambda runtime's) on the PATH"; exit 2; }
	PATH="$(dir $(PYTHON312)):$$PATH" SAM_CLI_TELEMETRY=0 $(TOOLS)/sam/bin/sam build
	@touch $@

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## Time `run car-rental` beside the DuckDB and plain PySpark references (RENTALS="1000000 5000000 10000000")
	$(BIN)/python -m benchmarks.car_rental --rentals $(RENTALS)

clean: ## Remove the virtual environment and local outputs
	rm -rf $(VENV) $(TOOLS) demo-output bench-output .pytest_cache .mypy_cache .ruff_cache

# invoke-gate: the upload gate in Docker (`sam local invoke`) on a sample file put in a deployed dev stack.
DATASET ?= users
SAM := $(TOOLS)/sam/bin/sam

# Fills the stack's bucket and the uploaded object's version into a copy of the sample event, and the stack's
# names into a copy of events/env.json. Arguments: the sample event, put-object's answer, the stack's
# outputs (JSON), the folder the two copies go to.
define FILL_GATE_EVENT
import json, sys
event_file, put_file, outputs_file, folder = sys.argv[1:5]
put, outputs = json.load(open(put_file)), dict(json.load(open(outputs_file)))
event = json.load(open(event_file))
s3 = event["Records"][0]["s3"]
s3["bucket"].update(name=outputs["DataBucketName"], arn="arn:aws:s3:::" + outputs["DataBucketName"])
s3["object"].update(versionId=put["VersionId"], eTag=put["ETag"].strip('"'))
json.dump(event, open(folder + "/event.json", "w"), indent=2)
env = json.load(open("events/env.json"))
env["ValidateUploadFunction"].update(
    DATA_BUCKET=outputs["DataBucketName"],
    STATE_MACHINE_ARN=outputs["CarRentalStateMachineArn"],
    ALERT_TOPIC_ARN=outputs["AlertTopicArn"],
)
json.dump(env, open(folder + "/env.json", "w"), indent=2)
print(f"s3://{outputs['DataBucketName']}/{s3['object']['key']} version {put['VersionId']}")
endef
export FILL_GATE_EVENT

invoke-gate: $(STAMP) $(TOOLS)/sam/.installed ## Run the upload gate in Docker on a sample file put in a dev stack (STACK=name DATASET=users)
	@test -n "$(STACK)" || { echo "usage: make invoke-gate STACK=<dev stack> [DATASET=users|vehicles|locations|rental_transactions]"; exit 2; }
	@test -f events/s3_put_$(DATASET).json || { echo "no events/s3_put_$(DATASET).json: DATASET is users, vehicles, locations or rental_transactions"; exit 2; }
	@set -eu; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	aws cloudformation describe-stacks --stack-name "$(STACK)" --output json \
		--query "Stacks[0].Outputs[].[OutputKey, OutputValue]" > "$$tmp/outputs.json"; \
	$(BIN)/rental-analytics generate car-rental --output "$$tmp/batch" --rentals 200 > /dev/null; \
	key=$$($(BIN)/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["Records"][0]["s3"]["object"]["key"])' \
		events/s3_put_$(DATASET).json); \
	bucket=$$($(BIN)/python -c 'import json, sys; print(dict(json.load(open(sys.argv[1])))["DataBucketName"])' "$$tmp/outputs.json"); \
	aws s3api put-object --bucket "$$bucket" --key "$$key" --body "$$tmp/batch/$(DATASET).csv" --output json > "$$tmp/put.json"; \
	$(BIN)/python -c "$$FILL_GATE_EVENT" events/s3_put_$(DATASET).json "$$tmp/put.json" "$$tmp/outputs.json" "$$tmp"; \
	SAM_CLI_TELEMETRY=0 $(SAM) build CarRental/ValidateUploadFunction; \
	SAM_CLI_TELEMETRY=0 $(SAM) local invoke CarRental/ValidateUploadFunction -e "$$tmp/event.json" --env-vars "$$tmp/env.json"

# Copies the core package's sources (Python, SQL, py.typed) into the folder $(1).
copy-core = mkdir -p "$(1)" && cd rental_analytics && find . -name '*.py' -o -name '*.sql' -o -name 'py.typed' | \
	xargs -I{} cp --parents {} "$(1)/"

# What the layer installs beside the core package, as pyproject.toml pins it (tests/as_built checks the two agree).
LAYER_REQUIREMENTS := "pyarrow>=16,<20"

# `sam build` runs this for the CoreLayer (BuildMethod: makefile): the core package and what the functions
# import from outside the Lambda runtime, as Linux wheels for the python3.12 runtime. Left out of pyarrow: what
# only building against it or Arrow Flight needs (headers, Cython sources, its tests, the Flight libraries), and
# the two extra names of each libarrow_python* library, which a wheel holds as copies: the loader asks for
# libarrow_python.so.<major> only. docs/deployment.md lists what stays; tests/as_built runs it.
build-CoreLayer:
	$(PYTHON) -m pip install --quiet --target "$(ARTIFACTS_DIR)/python" --platform manylinux2014_x86_64 \
		--implementation cp --python-version 3.12 --only-binary=:all: $(LAYER_REQUIREMENTS)
	cd "$(ARTIFACTS_DIR)/python/pyarrow" && rm -rf include src tests _pyarrow_cpp_tests.* *flight* \
		&& find . \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \) -delete \
		&& find . -maxdepth 1 \( -name 'libarrow_python*.so' -o -name 'libarrow_python*.so.*.*.*' \) -delete
	$(call copy-core,$(ARTIFACTS_DIR)/python/rental_analytics)

# `sam build` runs this for ShipCodeFunction: the handler with the code it ships to the artifacts bucket.
build-ShipCodeFunction:
	cp functions/ship_code/app.py "$(ARTIFACTS_DIR)/"
	mkdir -p "$(ARTIFACTS_DIR)/spark_scripts"
	cp spark_scripts/*.py "$(ARTIFACTS_DIR)/spark_scripts/"
	$(call copy-core,$(ARTIFACTS_DIR)/rental_analytics)
	@# boto3 too, as the other functions ship it: the handler then runs the SDK it was tested with, not the runtime's.
	$(PYTHON) -m pip install --quiet --target "$(ARTIFACTS_DIR)" "aws-lambda-powertools>=3.2,<4" boto3
