"""Worked solution for 10_types_and_names: the status of each case, from the rules in the notebook."""

PREDICTIONS = {
    "A": 200,  # "-0.5": a quoted number, converted by protobuf's JSON parser
    "B": 400,  # "1,5": not a number in any notation; the handler's float() check refuses it
    "C": 200,  # false: accepted as a number (stored as 0.0), like true
    "D": 200,  # "loss/val": '/' is allowed in names
    "E": 400,  # "loss?": '?' is not an allowed character
    "F": 400,  # 251 characters: one over the 250-character limit
}
